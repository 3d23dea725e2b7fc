//! `gantry cert`: a private CA and a serving certificate for the admission webhook, for
//! clusters without cert-manager (docs/admission.md, deploy/kubernetes/gantry-cert/).
//!
//! The API server reaches the webhook at `https://<service>.<namespace>.svc` and trusts only
//! the `caBundle` of the ValidatingWebhookConfiguration, so a CA made here for this one purpose
//! is enough — no public CA can issue a `.svc` name anyway. Besides the four PEM files we write
//! the kustomize patch that puts the CA into that `caBundle`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use clap::Args;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// The ValidatingWebhookConfiguration in deploy/kubernetes/base whose `caBundle` the patch sets.
pub const WEBHOOK_CONFIGURATION: &str = "gantry";
/// Every webhook of that configuration: each needs the CA (tests/kubernetes.rs checks this list
/// against the manifest).
pub const WEBHOOKS: &[&str] = &["images.gantry.dev"];

/// A previous `ca.crt` is kept in the bundle only if it looks like one; a CA bundle larger than
/// this is not something `gantry cert` wrote.
const MAX_PREVIOUS_CA_BYTES: u64 = 64 * 1024;
/// Longest validity accepted: beyond 100 years is a typo, and X.509 dates stop at 9999.
const MAX_DAYS: u32 = 36_500;
/// `notBefore` is set this far in the past so that an API server whose clock is a little behind
/// ours does not reject a certificate made a moment ago as "not yet valid".
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// `gantry cert` arguments.
#[derive(Debug, Args)]
pub struct CertArgs {
    /// Name of the Service in front of gantry serve's admission port.
    #[arg(long, value_name = "NAME", default_value = "gantry")]
    pub service: String,
    /// Namespace of that Service.
    #[arg(long, value_name = "NAMESPACE", default_value = "gantry-system")]
    pub namespace: String,
    /// Directory to write ca.crt, ca.key, tls.crt, tls.key and cabundle-patch.yaml into
    /// (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Extra DNS name for the serving certificate (repeatable).
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// Extra IP address for the serving certificate (repeatable), e.g. 127.0.0.1 for a local test.
    #[arg(long = "ip", value_name = "ADDR")]
    pub ip: Vec<IpAddr>,
    /// Validity of the serving certificate, in days.
    #[arg(long, value_name = "N", default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DAYS)))]
    pub days: u32,
    /// Validity of the CA, in days (at least --days).
    #[arg(long, value_name = "N", default_value_t = 3650, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_DAYS)))]
    pub ca_days: u32,
    /// Replace files that already exist. The previous ca.crt stays in the patch's caBundle
    /// beside the new CA, so replicas still serving the old certificate keep answering until
    /// they have the new one.
    #[arg(long)]
    pub force: bool,
}

/// The files written, in the order they are listed to the user.
const CA_CRT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const TLS_CRT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
const PATCH: &str = "cabundle-patch.yaml";

/// Private keys: owner only.
const KEY_MODE: u32 = 0o600;
/// Certificates and the patch are public.
const PUBLIC_MODE: u32 = 0o644;

pub async fn run(args: CertArgs) -> anyhow::Result<ExitCode> {
    dns_label("--service", &args.service)?;
    dns_label("--namespace", &args.namespace)?;
    for name in &args.dns {
        dns_name(name)?;
    }
    if args.days > args.ca_days {
        bail!(
            "--days {} is longer than --ca-days {}: the serving certificate would outlive its CA",
            args.days,
            args.ca_days
        );
    }

    let dir = &args.out;
    let names = [CA_CRT, CA_KEY, TLS_CRT, TLS_KEY, PATCH];
    // Check everything before writing anything: a refusal leaves the directory as it was.
    let existing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| dir.join(n).exists())
        .collect();
    if !existing.is_empty() && !args.force {
        bail!(
            "refusing to overwrite {} in {} (use --force to replace them)",
            existing.join(", "),
            dir.display()
        );
    }
    let previous_ca = if args.force {
        previous_ca(&dir.join(CA_CRT))
    } else {
        None
    };

    let issued = issue(&args)?;
    let mut bundle = issued.ca_pem.clone();
    if let Some(old) = &previous_ca
        && old.trim() != issued.ca_pem.trim()
    {
        bundle.push_str(old);
    }
    let patch = cabundle_patch(&bundle);

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    write(dir, CA_CRT, &issued.ca_pem, PUBLIC_MODE, args.force)?;
    write(dir, CA_KEY, &issued.ca_key_pem, KEY_MODE, args.force)?;
    write(dir, TLS_CRT, &issued.tls_pem, PUBLIC_MODE, args.force)?;
    write(dir, TLS_KEY, &issued.tls_key_pem, KEY_MODE, args.force)?;
    write(dir, PATCH, &patch, PUBLIC_MODE, args.force)?;

    let mut summary = String::new();
    for name in names {
        let _ = writeln!(summary, "wrote {}", dir.join(name).display());
    }
    let _ = writeln!(
        summary,
        "serving certificate for: {}",
        issued.sans.join(", ")
    );
    if previous_ca.is_some() {
        let _ = writeln!(
            summary,
            "caBundle also trusts the previous ca.crt until the next rotation"
        );
    }
    crate::output::text(&summary)?;
    Ok(ExitCode::SUCCESS)
}

/// The PEM files of one run.
struct Issued {
    ca_pem: String,
    ca_key_pem: String,
    tls_pem: String,
    tls_key_pem: String,
    sans: Vec<String>,
}

/// Makes the CA and the serving certificate it signs, both on P-256 keys (short, fast, and
/// accepted by every API server and by rustls).
fn issue(args: &CertArgs) -> anyhow::Result<Issued> {
    let now = now()?;
    let not_before = now
        .checked_sub(CLOCK_SKEW)
        .context("the system clock is before 1970")?;
    // rcgen takes `time::OffsetDateTime`; counting from rcgen's own epoch value spares a direct
    // dependency on the `time` crate. MAX_DAYS keeps the sum far from its overflow.
    let datetime = |since_epoch: Duration| rcgen::date_time_ymd(1970, 1, 1) + since_epoch;

    let ca_key =
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("generating the CA key")?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name(&format!(
        "gantry admission CA ({}.{})",
        args.service, args.namespace
    ));
    // Path length 0: this CA signs serving certificates only, never another CA.
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = datetime(not_before);
    ca.not_after = datetime(now + DAY * args.ca_days);
    let ca_cert = ca.self_signed(&ca_key).context("signing the CA")?;

    let sans = subject_alt_names(args);
    let mut leaf = CertificateParams::default();
    leaf.distinguished_name = name(&format!("{}.{}.svc", args.service, args.namespace));
    leaf.subject_alt_names = sans
        .iter()
        .map(|san| match san.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => san
                .clone()
                .try_into()
                .map(SanType::DnsName)
                .with_context(|| format!("{san}: not a valid DNS name")),
        })
        .collect::<anyhow::Result<_>>()?;
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = datetime(not_before);
    leaf.not_after = datetime(now + DAY * args.days);
    let tls_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating the serving key")?;
    let issuer = Issuer::new(ca, &ca_key);
    let tls_cert = leaf
        .signed_by(&tls_key, &issuer)
        .context("signing the serving certificate")?;

    Ok(Issued {
        ca_pem: ca_cert.pem(),
        ca_key_pem: ca_key.serialize_pem(),
        tls_pem: tls_cert.pem(),
        tls_key_pem: tls_key.serialize_pem(),
        sans,
    })
}

/// The Service's in-cluster names (what the API server dials is `<service>.<namespace>.svc`;
/// the others cover clients inside the cluster), then the user's extra names, without repeats.
fn subject_alt_names(args: &CertArgs) -> Vec<String> {
    let (svc, ns) = (&args.service, &args.namespace);
    let mut sans = vec![
        svc.clone(),
        format!("{svc}.{ns}"),
        format!("{svc}.{ns}.svc"),
        format!("{svc}.{ns}.svc.cluster.local"),
    ];
    let extra = args
        .dns
        .iter()
        .cloned()
        .chain(args.ip.iter().map(IpAddr::to_string));
    for san in extra {
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    sans
}

/// The kustomize strategic-merge patch: the API server verifies Gantry's certificate against
/// `caBundle` (base64 of PEM). `webhooks` merges by `name`, so the rest of each webhook stays.
fn cabundle_patch(bundle_pem: &str) -> String {
    let ca_bundle = base64::engine::general_purpose::STANDARD.encode(bundle_pem);
    let mut patch = String::from(
        "# Written by `gantry cert`: the CA that signed tls.crt, for the API server to trust\n\
         # the admission webhook. Regenerate it together with the certificates.\n\
         apiVersion: admissionregistration.k8s.io/v1\n\
         kind: ValidatingWebhookConfiguration\n\
         metadata:\n",
    );
    let _ = writeln!(patch, "  name: {WEBHOOK_CONFIGURATION}");
    patch.push_str("webhooks:\n");
    for webhook in WEBHOOKS {
        let _ = writeln!(patch, "  - name: {webhook}");
        patch.push_str("    clientConfig:\n");
        let _ = writeln!(patch, "      caBundle: {ca_bundle}");
    }
    patch
}

/// The existing `ca.crt`, if it is a PEM certificate of sane size; anything else is not kept.
fn previous_ca(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_PREVIOUS_CA_BYTES {
        return None;
    }
    let pem = std::fs::read_to_string(path).ok()?;
    let pem = pem.trim_start();
    pem.starts_with("-----BEGIN CERTIFICATE-----")
        .then(|| format!("{}\n", pem.trim_end()))
}

/// Writes one file with `mode`; without `force`, fails if it exists (checked once more here, so
/// a file appearing since the first check is not overwritten either).
fn write(dir: &Path, name: &str, contents: &str, mode: u32, force: bool) -> anyhow::Result<()> {
    let path = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let mut file = options
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    // `mode` applies to new files only: an overwritten key must lose wider permissions too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// A Service or namespace name is an RFC 1123 label; it becomes part of DNS names in the
/// certificate, so anything else would produce a certificate no client accepts.
fn dns_label(flag: &str, value: &str) -> anyhow::Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if !ok {
        bail!(
            "{flag} {value:?}: must be a lowercase RFC 1123 label (a-z, 0-9, '-', at most 63 characters)"
        );
    }
    Ok(())
}

/// An extra DNS name: labels as in [`dns_label`] (either case), optionally a leading `*.`
/// wildcard. rcgen only checks for ASCII, and a SAN no client can match is a silent failure.
fn dns_name(name: &str) -> anyhow::Result<()> {
    let host = name.strip_prefix("*.").unwrap_or(name);
    let ok = name.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !ok {
        bail!("--dns {name:?}: not a valid DNS name");
    }
    Ok(())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Time since the Unix epoch.
fn now() -> anyhow::Result<Duration> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_names_that_cannot_be_dns_labels() {
        assert!(dns_label("--service", "gantry").is_ok());
        assert!(dns_label("--service", "a-1").is_ok());
        for bad in ["", "Gantry", "-a", "a-", "a.b", "a_b", &"a".repeat(64)] {
            assert!(dns_label("--service", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn checks_extra_dns_names() {
        for good in [
            "gantry.example.test",
            "*.example.test",
            "Gantry-1.Example.Test",
            "localhost",
        ] {
            assert!(dns_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "a..b",
            "a b",
            "-a.b",
            "a-.b",
            "a.*.b",
            "é.test",
            "a.",
            &"a".repeat(64),
        ] {
            assert!(dns_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patch_names_every_webhook() {
        let patch = cabundle_patch("PEM\n");
        for webhook in WEBHOOKS {
            assert!(patch.contains(&format!("- name: {webhook}\n")), "{patch}");
        }
        assert!(patch.contains("caBundle: UEVNCg==\n"), "{patch}");
    }
}
