//! `gantry cert`: the real binary writes the files, OpenSSL (an independent implementation)
//! checks them — chain, names, purposes, key pairing, validity — and the kustomize patch
//! carries exactly the CA.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use crate::util::{expect_error, gantry, stderr, stdout};

const FILES: [&str; 5] = [
    "ca.crt",
    "ca.key",
    "tls.crt",
    "tls.key",
    "cabundle-patch.yaml",
];

/// The service names every certificate must carry for `--service gantry --namespace gantry-system`.
const SERVICE_NAMES: [&str; 4] = [
    "gantry",
    "gantry.gantry-system",
    "gantry.gantry-system.svc",
    "gantry.gantry-system.svc.cluster.local",
];

/// Runs `gantry cert` into `out` with the deployment's names plus `extra`; asserts success.
fn cert(home: &Path, out: &Path, extra: &[&str]) {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "cert",
        "--service",
        "gantry",
        "--namespace",
        "gantry-system",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    let o = gantry(home, &args);
    assert_eq!(o.status.code(), Some(0), "gantry {args:?}:\n{}", stderr(&o));
    for name in FILES {
        assert!(
            stdout(&o).contains(name),
            "summary names {name}: {}",
            stdout(&o)
        );
    }
}

/// Runs openssl; returns (success, stdout + stderr).
fn openssl(args: &[&str]) -> (bool, String) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed for the certificate tests (Debian package openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn openssl_ok(args: &[&str]) -> String {
    let (ok, text) = openssl(args);
    assert!(ok, "openssl {args:?} failed:\n{text}");
    text
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_string()
}

/// The subjectAltName entries as OpenSSL prints them (`DNS:a`, `IP Address:127.0.0.1`).
fn sans(cert: &str) -> Vec<String> {
    let text = openssl_ok(&["x509", "-in", cert, "-noout", "-ext", "subjectAltName"]);
    text.lines()
        .skip(1)
        .flat_map(|l| l.split(','))
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The patch's caBundle for each webhook, decoded.
fn patch_bundles(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let text = std::fs::read_to_string(dir.join("cabundle-patch.yaml")).unwrap();
    let patch: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(patch["apiVersion"], "admissionregistration.k8s.io/v1");
    assert_eq!(patch["kind"], "ValidatingWebhookConfiguration");
    assert_eq!(patch["metadata"]["name"], "gantry");
    let webhooks = patch["webhooks"].as_sequence().expect("webhooks list");
    assert!(!webhooks.is_empty(), "{text}");
    webhooks
        .iter()
        .map(|w| {
            let name = w["name"].as_str().unwrap().to_string();
            let b64 = w["clientConfig"]["caBundle"].as_str().unwrap();
            let pem = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_else(|e| panic!("caBundle of {name} is not base64: {e}"));
            (name, pem)
        })
        .collect()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn serving_certificate_chains_to_the_ca_with_the_service_names() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("certs/nested");
    cert(
        home.path(),
        &dir,
        &["--ip", "127.0.0.1", "--dns", "gantry.example.test"],
    );
    let (ca, tls) = (path(&dir, "ca.crt"), path(&dir, "tls.crt"));

    // Chain and purpose: a TLS server certificate issued by ca.crt.
    let verified = openssl_ok(&["verify", "-purpose", "sslserver", "-CAfile", &ca, &tls]);
    assert!(verified.contains(": OK"), "{verified}");
    // The name the API server dials, and the loopback address tests dial.
    openssl_ok(&[
        "verify",
        "-CAfile",
        &ca,
        "-verify_hostname",
        "gantry.gantry-system.svc",
        &tls,
    ]);
    openssl_ok(&["verify", "-CAfile", &ca, "-verify_ip", "127.0.0.1", &tls]);
    let (ok, text) = openssl(&[
        "verify",
        "-CAfile",
        &ca,
        "-verify_hostname",
        "gantry.other-namespace.svc",
        &tls,
    ]);
    assert!(!ok, "a name not in the certificate must not verify: {text}");

    let mut expected: Vec<String> = SERVICE_NAMES.iter().map(|n| format!("DNS:{n}")).collect();
    expected.push("DNS:gantry.example.test".into());
    expected.push("IP Address:127.0.0.1".into());
    assert_eq!(sans(&tls), expected);

    // ECDSA P-256 for both, the CA limited to signing leaves, the leaf not a CA.
    for c in [&ca, &tls] {
        let text = openssl_ok(&["x509", "-in", c, "-noout", "-text"]);
        assert!(text.contains("id-ecPublicKey"), "{text}");
        assert!(text.contains("prime256v1"), "{text}");
        assert!(text.contains("ecdsa-with-SHA256"), "{text}");
    }
    let bc = openssl_ok(&["x509", "-in", &ca, "-noout", "-ext", "basicConstraints"]);
    assert!(bc.contains("CA:TRUE") && bc.contains("pathlen:0"), "{bc}");
    let bc = openssl_ok(&["x509", "-in", &tls, "-noout", "-ext", "basicConstraints"]);
    assert!(bc.contains("CA:FALSE"), "{bc}");
    let eku = openssl_ok(&["x509", "-in", &tls, "-noout", "-ext", "extendedKeyUsage"]);
    assert!(eku.contains("TLS Web Server Authentication"), "{eku}");

    // Each key belongs to its certificate.
    for (key, crt) in [("tls.key", &tls), ("ca.key", &ca)] {
        let from_key = openssl_ok(&["pkey", "-in", &path(&dir, key), "-pubout"]);
        let from_cert = openssl_ok(&["x509", "-in", crt, "-noout", "-pubkey"]);
        assert_eq!(from_key, from_cert, "{key} does not match its certificate");
    }
    let tls_pub = openssl_ok(&["x509", "-in", &tls, "-noout", "-pubkey"]);
    let ca_pub = openssl_ok(&["x509", "-in", &ca, "-noout", "-pubkey"]);
    assert_ne!(tls_pub, ca_pub, "the CA and the leaf have their own keys");

    // Valid now, for the default 365 days (not 366), the CA for 3650.
    openssl_ok(&["x509", "-in", &tls, "-noout", "-checkend", "0"]);
    openssl_ok(&[
        "x509",
        "-in",
        &tls,
        "-noout",
        "-checkend",
        &(364 * 86400).to_string(),
    ]);
    let (ok, _) = openssl(&[
        "x509",
        "-in",
        &tls,
        "-noout",
        "-checkend",
        &(366 * 86400).to_string(),
    ]);
    assert!(!ok, "tls.crt must expire within 366 days");
    openssl_ok(&[
        "x509",
        "-in",
        &ca,
        "-noout",
        "-checkend",
        &(3649 * 86400).to_string(),
    ]);
    let (ok, _) = openssl(&[
        "x509",
        "-in",
        &ca,
        "-noout",
        "-checkend",
        &(3651 * 86400).to_string(),
    ]);
    assert!(!ok, "ca.crt must expire within 3651 days");

    // The patch gives every webhook exactly ca.crt.
    let ca_pem = std::fs::read(&ca).unwrap();
    let bundles = patch_bundles(&dir);
    assert_eq!(
        bundles.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["images.gantry.dev"]
    );
    for (name, pem) in bundles {
        assert_eq!(pem, ca_pem, "caBundle of {name}");
    }

    #[cfg(unix)]
    {
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
        assert_eq!(mode(&dir.join("tls.key")), 0o600);
        assert_eq!(mode(&dir.join("tls.crt")), 0o644);
    }
}

#[test]
fn validity_follows_days_and_ca_days() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("out");
    cert(home.path(), &dir, &["--days", "30", "--ca-days", "60"]);
    let (ca, tls) = (path(&dir, "ca.crt"), path(&dir, "tls.crt"));
    openssl_ok(&[
        "x509",
        "-in",
        &tls,
        "-noout",
        "-checkend",
        &(29 * 86400).to_string(),
    ]);
    assert!(
        !openssl(&[
            "x509",
            "-in",
            &tls,
            "-noout",
            "-checkend",
            &(31 * 86400).to_string()
        ])
        .0
    );
    openssl_ok(&[
        "x509",
        "-in",
        &ca,
        "-noout",
        "-checkend",
        &(59 * 86400).to_string(),
    ]);
    assert!(
        !openssl(&[
            "x509",
            "-in",
            &ca,
            "-noout",
            "-checkend",
            &(61 * 86400).to_string()
        ])
        .0
    );
    // Only the in-cluster names when no --dns/--ip is given.
    let expected: Vec<String> = SERVICE_NAMES.iter().map(|n| format!("DNS:{n}")).collect();
    assert_eq!(sans(&tls), expected);
}

#[test]
fn refuses_to_overwrite_and_leaves_the_directory_as_it_was() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("certs");
    cert(home.path(), &dir, &[]);
    let before: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();

    let err = expect_error(home.path(), &["cert", "--out", dir.to_str().unwrap()]);
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert!(err.contains("--force"), "{err}");
    let after: Vec<Vec<u8>> = FILES
        .iter()
        .map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    assert!(before == after, "a refused run changed the files");

    // One existing file is enough to refuse, and nothing else is written.
    let partial = home.path().join("partial");
    std::fs::create_dir(&partial).unwrap();
    std::fs::write(partial.join("tls.key"), "mine").unwrap();
    let err = expect_error(home.path(), &["cert", "--out", partial.to_str().unwrap()]);
    assert!(err.contains("tls.key"), "{err}");
    assert_eq!(
        std::fs::read_to_string(partial.join("tls.key")).unwrap(),
        "mine"
    );
    let names: Vec<_> = std::fs::read_dir(&partial)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["tls.key"]);
}

#[test]
fn force_replaces_everything_and_keeps_the_previous_ca_trusted_once() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("certs");
    cert(home.path(), &dir, &[]);
    let first_ca = std::fs::read(dir.join("ca.crt")).unwrap();
    let first_key = std::fs::read(dir.join("tls.key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join("tls.key"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }

    cert(home.path(), &dir, &["--force"]);
    let second_ca = std::fs::read(dir.join("ca.crt")).unwrap();
    assert_ne!(second_ca, first_ca, "a new CA");
    assert_ne!(
        std::fs::read(dir.join("tls.key")).unwrap(),
        first_key,
        "a new key"
    );
    #[cfg(unix)]
    assert_eq!(
        mode(&dir.join("tls.key")),
        0o600,
        "an overwritten key loses wider modes"
    );
    openssl_ok(&[
        "verify",
        "-CAfile",
        &path(&dir, "ca.crt"),
        &path(&dir, "tls.crt"),
    ]);

    // caBundle = new CA, then the previous one: pods still serving the old certificate verify.
    let mut both = second_ca.clone();
    both.extend_from_slice(&first_ca);
    for (name, pem) in patch_bundles(&dir) {
        assert_eq!(
            String::from_utf8_lossy(&pem),
            String::from_utf8_lossy(&both),
            "caBundle of {name}"
        );
    }

    // The next rotation drops the oldest CA: the bundle never grows beyond two.
    cert(home.path(), &dir, &["--force"]);
    let third_ca = std::fs::read(dir.join("ca.crt")).unwrap();
    let mut expected = third_ca.clone();
    expected.extend_from_slice(&second_ca);
    for (name, pem) in patch_bundles(&dir) {
        assert!(
            pem == expected,
            "caBundle of {name} after a second rotation"
        );
    }
}

#[test]
fn rejects_bad_names_and_validity() {
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("x");
    let out = out.to_str().unwrap();
    for (args, says) in [
        (vec!["--service", "Gantry_API"], "--service"),
        (vec!["--namespace", "a.b"], "--namespace"),
        (vec!["--days", "400", "--ca-days", "300"], "outlive"),
        (vec!["--dns", "bad name with spaces é"], "--dns"),
    ] {
        let mut full = vec!["cert", "--out", out];
        full.extend_from_slice(&args);
        let err = expect_error(home.path(), &full);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(
            !PathBuf::from(out).join("ca.key").exists(),
            "{args:?} wrote files"
        );
    }
    // clap rejects these before anything runs (exit 2 too).
    for args in [
        vec!["--days", "0"],
        vec!["--ip", "not-an-ip"],
        vec!["--days", "100000"],
    ] {
        let mut full = vec!["cert", "--out", out];
        full.extend_from_slice(&args);
        expect_error(home.path(), &full);
    }
}
