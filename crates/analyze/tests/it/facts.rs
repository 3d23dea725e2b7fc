//! Image facts from real layers: the cases of issue 3's proof list.

use gantry_analyze::facts::{Category, Evidence, FileFacts, SecretSource};
use gantry_model::Location;
use gantry_model::oci::{Compression, ContainerConfig, History};
use gantry_testkit::LayerBuilder;

use crate::Image;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n";

fn dpkg_entry(name: &str, version: &str, status: &str) -> String {
    format!(
        "Package: {name}\nStatus: {status}\nPriority: optional\nArchitecture: amd64\nVersion: {version}\nDescription: {name}\n multi-line\n .\n description\n\n"
    )
}

fn installed(pkgs: &[(&str, &str)]) -> String {
    pkgs.iter()
        .map(|(n, v)| dpkg_entry(n, v, "install ok installed"))
        .collect()
}

/// A Debian-like base layer with merged /usr.
fn debian_base() -> LayerBuilder {
    LayerBuilder::new(Compression::Gzip)
        .symlink("bin", "usr/bin")
        .symlink("sbin", "usr/sbin")
        .dir("etc")
        .file("etc/passwd", PASSWD)
        .file("etc/group", GROUP)
        .file("etc/os-release", "ID=debian\nVERSION_ID=\"12\"\n")
        .dir("usr/bin")
        .file_mode("usr/bin/dash", b"\x7fELF\x02\x01\x01\x00dash", 0o755)
        .symlink("usr/bin/sh", "dash")
        .file_mode("usr/bin/bash", b"\x7fELF\x02\x01\x01\x00bash", 0o755)
        .file_mode("usr/bin/apt", b"\x7fELF\x02\x01\x01\x00apt", 0o755)
        .file_mode("usr/bin/apt-get", b"\x7fELF\x02\x01\x01\x00apt", 0o755)
        .file_mode("usr/bin/dpkg", b"\x7fELF\x02\x01\x01\x00dpkg", 0o755)
        .file_mode("usr/bin/passwd", b"\x7fELF\x02\x01\x01\x00passwd", 0o4755)
        .file_mode("usr/bin/wall", b"\x7fELF\x02\x01\x01\x00wall", 0o2755)
        .file(
            "var/lib/dpkg/status",
            installed(&[
                ("base-files", "12.4"),
                ("libc6", "2.36-9"),
                ("gcc-12-base", "12.2.0-14"),
            ]),
        )
}

type Row<'a> = (&'a str, Category, Evidence, Option<&'a str>, &'a str, u64);

fn toolchain(f: &FileFacts) -> Vec<Row<'_>> {
    f.toolchain
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.category,
                t.evidence,
                t.package.as_deref(),
                t.location.path.as_deref().unwrap_or(""),
                t.location.layer_index.unwrap_or(u64::MAX),
            )
        })
        .collect()
}

#[test]
fn single_stage_build_image_as_root() {
    let gcc_list = "/.\n/usr\n/usr/bin\n/usr/bin/gcc-12\n/usr/bin/x86_64-linux-gnu-gcc-12\n/usr/bin/gcov-12\n/usr/lib/gcc/x86_64-linux-gnu/12/cc1\n";
    let image = Image::new(vec![
        debian_base(),
        LayerBuilder::new(Compression::Zstd)
            .file(
                "var/lib/dpkg/status",
                installed(&[
                    ("base-files", "12.4"),
                    ("libc6", "2.36-9"),
                    ("gcc-12-base", "12.2.0-14"),
                    ("gcc-12", "12.2.0-14"),
                    ("gcc", "4:12.2.0-3"),
                    ("make", "4.3-4.1"),
                    ("python3-dev", "3.11.2-1"),
                    ("python3", "3.11.2-1"),
                    ("git", "1:2.39.2-1.1"),
                ]),
            )
            .file("var/lib/dpkg/info/gcc-12.list", gcc_list)
            .file("var/lib/dpkg/info/gcc.list", "/.\n/usr/bin/gcc\n")
            .file("var/lib/dpkg/info/make.list", "/.\n/usr/bin/make\n")
            .file_mode("usr/bin/gcc-12", b"\x7fELF gcc", 0o755)
            .symlink("usr/bin/gcc", "gcc-12")
            .symlink("usr/bin/x86_64-linux-gnu-gcc-12", "gcc-12")
            .file_mode("usr/bin/gcov-12", b"\x7fELF gcov", 0o755)
            .file_mode("usr/lib/gcc/x86_64-linux-gnu/12/cc1", b"\x7fELF cc1", 0o755)
            .file_mode("usr/bin/make", b"\x7fELF make", 0o755)
            .file_mode("usr/bin/git", b"\x7fELF git", 0o755)
            .file_mode("usr/bin/python3.11", b"\x7fELF python", 0o755)
            .file("usr/include/stdio.h", "int printf(const char *, ...);\n")
            .file("usr/include/x86_64-linux-gnu/bits/types.h", "/* types */\n")
            .file("usr/include/python3.11/Python.h", "/* Python */\n"),
        LayerBuilder::new(Compression::Gzip)
            .file("app/main.py", "print('hi')\n")
            .file("app/.git/HEAD", "ref: refs/heads/main\n")
            .file("app/.git/config", "[core]\n"),
    ]);
    let f = image.facts_as("");

    assert_eq!(f.user.uid, Some(0));
    assert_eq!(f.user.gid, Some(0));
    assert_eq!(f.user.root, Some(true));
    assert!(f.user.resolved);
    assert!(!f.user.numeric);
    assert_eq!(f.user.reason, "USER is not set: runs as root");
    // The gid comes from root's etc/passwd entry, as the runtime takes it.
    assert_eq!(
        f.user.location,
        Location {
            layer: Some(image.layer(0)),
            layer_index: Some(0),
            path: Some("etc/passwd".into()),
            field: Some("config.User".into()),
        }
    );

    use Category::*;
    use Evidence::*;
    assert_eq!(
        toolchain(&f),
        vec![
            ("app/.git", Vcs, Path, None, "app/.git/HEAD", 2),
            ("gcc", Compiler, Path, Some("gcc"), "usr/bin/gcc", 1),
            (
                "gcc-12",
                Compiler,
                Path,
                Some("gcc-12"),
                "usr/bin/gcc-12",
                1
            ),
            (
                "gcov-12",
                Compiler,
                Package,
                Some("gcc-12"),
                "usr/bin/gcov-12",
                1
            ),
            ("make", BuildTool, Path, Some("make"), "usr/bin/make", 1),
            (
                "x86_64-linux-gnu-gcc-12",
                Compiler,
                Path,
                Some("gcc-12"),
                "usr/bin/x86_64-linux-gnu-gcc-12",
                1
            ),
            ("usr/include", DevHeaders, Path, None, "usr/include", 1),
            (
                "Python.h",
                DevHeaders,
                Path,
                None,
                "usr/include/python3.11/Python.h",
                1
            ),
            (
                "cc1",
                Compiler,
                Path,
                Some("gcc-12"),
                "usr/lib/gcc/x86_64-linux-gnu/12/cc1",
                1
            ),
            (
                "gcc",
                Compiler,
                Package,
                Some("gcc"),
                "var/lib/dpkg/status",
                1
            ),
            (
                "gcc-12",
                Compiler,
                Package,
                Some("gcc-12"),
                "var/lib/dpkg/status",
                1
            ),
            (
                "make",
                BuildTool,
                Package,
                Some("make"),
                "var/lib/dpkg/status",
                1
            ),
            (
                "python3-dev",
                DevPackage,
                Package,
                Some("python3-dev"),
                "var/lib/dpkg/status",
                1
            ),
        ]
    );
    let include = f
        .toolchain
        .iter()
        .find(|t| t.name == "usr/include")
        .unwrap();
    assert_eq!(include.reason, "3 C/C++ header files under usr/include");
    assert_eq!(include.location.layer.as_deref(), Some(&*image.layer(1)));

    // The final status file counts (layer 1), with every installed package.
    let names: Vec<_> = f.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "base-files",
            "gcc",
            "gcc-12",
            "gcc-12-base",
            "git",
            "libc6",
            "make",
            "python3",
            "python3-dev"
        ]
    );
    assert!(f.packages.iter().all(|p| p.location.layer_index == Some(1)
        && p.location.path.as_deref() == Some("var/lib/dpkg/status")
        && p.arch.as_deref() == Some("amd64")));

    assert!(f.shell.present);
    assert_eq!(
        f.shell.paths,
        vec![
            "bin/bash",
            "bin/dash",
            "bin/sh",
            "usr/bin/bash",
            "usr/bin/dash",
            "usr/bin/sh"
        ]
    );
    let pms: Vec<_> = f
        .package_managers
        .iter()
        .map(|p| (p.name.as_str(), p.path.as_str(), p.location.path.as_deref()))
        .collect();
    assert_eq!(
        pms,
        vec![
            ("apt", "bin/apt", Some("usr/bin/apt")),
            ("apt-get", "bin/apt-get", Some("usr/bin/apt-get")),
            ("dpkg", "bin/dpkg", Some("usr/bin/dpkg")),
        ]
    );
    let setuid: Vec<_> = f
        .setuid
        .iter()
        .map(|s| (s.path.as_str(), s.mode, s.setuid, s.setgid))
        .collect();
    assert_eq!(
        setuid,
        vec![
            ("usr/bin/passwd", 0o4755, true, false),
            ("usr/bin/wall", 0o2755, false, true)
        ]
    );
    assert!(f.secrets.is_empty(), "{:?}", f.secrets);
    assert!(f.unknowns.is_empty(), "{:?}", f.unknowns);

    // The input contract's JSON shape.
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(
        json["toolchain"][1],
        serde_json::json!({
            "name": "gcc", "category": "compiler", "evidence": "path", "package": "gcc",
            "reason": "GNU C compiler driver",
            "location": {"layer": image.layer(1), "layer_index": 1, "path": "usr/bin/gcc"}
        })
    );
    assert_eq!(
        json["setuid"][0],
        serde_json::json!({
            "path": "usr/bin/passwd", "mode": 2541, "setuid": true, "setgid": false,
            "location": {"layer": image.layer(0), "layer_index": 0, "path": "usr/bin/passwd"}
        })
    );
    assert_eq!(
        json["user"],
        serde_json::json!({
            "configured": "", "name": null, "group": null, "uid": 0, "gid": 0,
            "numeric": false, "resolved": true, "root": true,
            "reason": "USER is not set: runs as root",
            "location": {"layer": image.layer(0), "layer_index": 0, "path": "etc/passwd", "field": "config.User"},
            "supplementary_gids": [], "home": "/root", "start_error": null
        })
    );
    assert_eq!(
        json["packages"][1],
        serde_json::json!({
            "ecosystem": "deb", "name": "gcc", "version": "4:12.2.0-3", "arch": "amd64",
            "source": null,
            "location": {"layer": image.layer(1), "layer_index": 1, "path": "var/lib/dpkg/status"},
            "purl": "pkg:deb/debian/gcc@4:12.2.0-3?arch=amd64&distro=debian-12"
        })
    );
}

#[test]
fn distroless_static_binary_as_nobody() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file(
                "etc/passwd",
                "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
            )
            .file("etc/group", "root:x:0:\nnonroot:x:65532:\nnobody:x:65534:\n")
            .file(
                "var/lib/dpkg/status.d/base-files",
                "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\nStatus: install ok installed\n",
            )
            .file("var/lib/dpkg/status.d/base-files.md5sums", "d41d8cd98f00b204e9800998ecf8427e  etc/issue\n")
            .file("var/lib/dpkg/status.d/netbase", "Package: netbase\nVersion: 6.4\nArchitecture: all\n"),
        LayerBuilder::new(Compression::Gzip).file_mode("app/server", b"\x7fELF static", 0o755),
    ]);
    let f = image.facts_as("65534:65534");
    let u = &f.user;
    assert_eq!(
        (u.uid, u.gid, u.numeric, u.resolved, u.root),
        (Some(65534), Some(65534), true, true, Some(false))
    );
    assert_eq!(u.name, None);
    assert_eq!(u.group.as_deref(), Some("65534"));
    assert_eq!(
        u.reason,
        "USER 65534:65534 is numeric: uid 65534 (nobody in etc/passwd)"
    );
    assert_eq!(u.location.path.as_deref(), Some("etc/passwd"));
    assert_eq!(u.location.field.as_deref(), Some("config.User"));
    assert!(f.toolchain.is_empty(), "{:?}", f.toolchain);
    assert!(!f.shell.present);
    assert!(f.package_managers.is_empty());
    assert!(f.setuid.is_empty());
    let pkgs: Vec<_> = f
        .packages
        .iter()
        .map(|p| {
            (
                p.name.as_str(),
                p.version.as_str(),
                p.location.path.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        pkgs,
        vec![
            (
                "base-files",
                "12.4+deb12u5",
                Some("var/lib/dpkg/status.d/base-files")
            ),
            ("netbase", "6.4", Some("var/lib/dpkg/status.d/netbase")),
        ]
    );
    assert!(f.unknowns.is_empty(), "{:?}", f.unknowns);

    // A numeric uid with no passwd entry: as written, gid 0 as the runtime does.
    let f = image.facts_as("4242");
    assert_eq!(
        (f.user.uid, f.user.gid, f.user.root),
        (Some(4242), Some(0), Some(false))
    );
    assert_eq!(f.user.reason, "USER 4242 is numeric: uid 4242");
    assert_eq!(f.user.location.path, None);
}

#[test]
fn user_names_resolve_through_the_final_passwd() {
    let image = Image::new(vec![
        debian_base(),
        LayerBuilder::new(Compression::Gzip)
            .file(
                "etc/passwd",
                format!("{PASSWD}appuser:x:1001:1001::/home/appuser:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n"),
            )
            .file("etc/group", format!("{GROUP}appgroup:x:1001:\nstaff:x:50:appuser\n")),
    ]);
    let f = image.facts_as("appuser");
    let u = &f.user;
    assert_eq!(
        (u.uid, u.gid, u.numeric, u.resolved, u.root),
        (Some(1001), Some(1001), false, true, Some(false))
    );
    assert_eq!(u.name.as_deref(), Some("appuser"));
    assert_eq!(u.reason, "USER appuser maps to uid 1001 in etc/passwd");
    assert_eq!(
        u.location,
        Location {
            layer: Some(image.layer(1)),
            layer_index: Some(1),
            path: Some("etc/passwd".into()),
            field: Some("config.User".into()),
        }
    );

    let f = image.facts_as("toor");
    assert_eq!((f.user.uid, f.user.root), (Some(0), Some(true)));
    assert_eq!(f.user.reason, "USER toor maps to uid 0 in etc/passwd");

    let f = image.facts_as("appuser:staff");
    assert_eq!((f.user.uid, f.user.gid), (Some(1001), Some(50)));
    assert_eq!(f.user.group.as_deref(), Some("staff"));

    let f = image.facts_as("appuser:nosuchgroup");
    assert_eq!(
        (f.user.uid, f.user.gid, f.user.resolved),
        (None, None, false)
    );
    assert_eq!(
        f.user.start_error.as_deref(),
        Some("unable to find group nosuchgroup: no matching entries in group file")
    );

    let f = image.facts_as("ghost");
    let u = &f.user;
    assert_eq!(
        (u.uid, u.gid, u.resolved, u.root),
        (None, None, false, None)
    );
    assert_eq!(
        u.reason,
        "USER ghost is unresolvable: no entry in etc/passwd; the container will not start (the runtime fails: unable to find user ghost: no matching entries in passwd file)"
    );

    // The base layer's passwd alone does not know appuser: the final one does.
    let base = Image::new(vec![debian_base()]);
    assert_eq!(base.facts_as("appuser").user.uid, None);
}

#[test]
fn root_without_passwd_and_passwd_through_a_symlink() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::None).file_mode("app", b"x", 0o755),
    ]);
    // runc looks `root` up like any name: without etc/passwd the container does not start.
    let f = image.facts_as("root");
    assert_eq!(
        (f.user.uid, f.user.root, f.user.resolved),
        (None, None, false)
    );
    assert_eq!(
        f.user.start_error.as_deref(),
        Some("unable to find user root: no matching entries in passwd file")
    );
    let f = image.facts_as("app");
    assert!(
        f.user
            .reason
            .starts_with("USER app is unresolvable: the final filesystem has no etc/passwd"),
        "{}",
        f.user.reason
    );

    let image = Image::new(vec![
        LayerBuilder::new(Compression::None)
            .symlink("etc/passwd", "../usr/share/baselayout/passwd")
            .file(
                "usr/share/baselayout/passwd",
                "root:x:0:0::/root:/bin/sh\nsvc:x:999:999::/:/bin/false\n",
            ),
    ]);
    let f = image.facts_as("svc");
    assert_eq!(f.user.uid, Some(999));
    assert_eq!(
        f.user.location.path.as_deref(),
        Some("usr/share/baselayout/passwd")
    );
}

#[test]
fn secret_added_then_deleted_still_ships() {
    let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n";
    let image = Image::new(vec![
        debian_base(),
        LayerBuilder::new(Compression::Gzip)
            .file_mode("root/.ssh/id_ed25519", pem, 0o600)
            .file("app/.env", "PORT=8080\nAPI_TOKEN=tok_0123456789abcdef\n"),
        LayerBuilder::new(Compression::Gzip).whiteout("root/.ssh/id_ed25519"),
    ]);
    let config = ContainerConfig {
        env: vec![
            "PATH=/usr/local/bin:/usr/bin".into(),
            "AWS_ACCESS_KEY_ID=AKIA2E0A8F3B244C9986".into(),
        ],
        ..ContainerConfig::default()
    };
    let history = vec![
        History {
            created_by: Some("/bin/sh -c #(nop) ADD file:abc in /".into()),
            ..History::default()
        },
        History {
            created_by: Some("ENV AWS_ACCESS_KEY_ID=AKIA2E0A8F3B244C9986".into()),
            empty_layer: true,
            ..History::default()
        },
        History {
            created_by: Some("RUN |1 NPM_TOKEN=npmsecretvalue123 /bin/sh -c npm ci".into()),
            ..History::default()
        },
    ];
    let f = image.facts(&config, &history);
    let got: Vec<_> = f
        .secrets
        .iter()
        .map(|s| {
            (
                s.rule.as_str(),
                s.source,
                s.deleted,
                s.redacted.as_str(),
                s.location.clone(),
            )
        })
        .collect();
    let file = |path: &str| Location {
        layer: Some(image.layer(1)),
        layer_index: Some(1),
        path: Some(path.into()),
        field: None,
    };
    let field = |f: &str| Location {
        field: Some(f.into()),
        ..Location::default()
    };
    assert_eq!(
        got,
        vec![
            (
                "dotenv-secret",
                SecretSource::File,
                false,
                "API_TOKEN=tok_…",
                file("app/.env")
            ),
            (
                "private-key",
                SecretSource::File,
                true,
                "-----BEGIN OPENSSH PRIVATE KEY----- …",
                file("root/.ssh/id_ed25519")
            ),
            (
                "aws-access-key-id",
                SecretSource::Env,
                false,
                "AKIA…",
                field("config.Env")
            ),
            (
                "aws-access-key-id",
                SecretSource::History,
                false,
                "AKIA…",
                field("history[1]")
            ),
            (
                "secret-variable",
                SecretSource::History,
                false,
                "NPM_TOKEN=npms…",
                field("history[2]")
            ),
        ]
    );
    let json = serde_json::to_value(&f.secrets[1]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "rule": "private-key", "description": "private key (PEM, OpenSSH or PGP)",
            "source": "file", "deleted": true,
            "redacted": "-----BEGIN OPENSSH PRIVATE KEY----- …",
            "location": {"layer": image.layer(1), "layer_index": 1, "path": "root/.ssh/id_ed25519"}
        })
    );
    // Nothing secret is kept anywhere in the facts.
    let all = serde_json::to_string(&f).unwrap();
    assert!(!all.contains("0123456789abcdef"));
    assert!(!all.contains("2E0A8F3B244C9986"));
    assert!(!all.contains("b3BlbnNzaC1rZXkt"));
}

#[test]
fn secret_overwritten_by_a_later_layer_is_deleted() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip).file(
            "app/config.js",
            format!("module.exports = {{ token: 'ghp_{}' }}\n", "x".repeat(36)),
        ),
        LayerBuilder::new(Compression::Gzip).file("app/config.js", "module.exports = {}\n"),
    ]);
    let f = image.facts_as("1000");
    assert_eq!(f.secrets.len(), 1);
    assert!(f.secrets[0].deleted);
    assert_eq!(f.secrets[0].rule, "github-token");
    assert_eq!(f.secrets[0].location.layer_index, Some(0));
}

#[test]
fn node_app_with_typescript_and_source_maps() {
    let image =
        Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file("usr/local/bin/node", b"\x7fELF node")
            .symlink("usr/local/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js")
            .file("usr/local/lib/node_modules/npm/bin/npm-cli.js", "#!/usr/bin/env node\n"),
        LayerBuilder::new(Compression::Gzip)
            .file("app/package.json", "{\"name\":\"app\"}")
            .file("app/node_modules/typescript/package.json", "{\"name\":\"typescript\"}")
            .file("app/node_modules/typescript/lib/tsc.js", "// tsc\n")
            .file("app/node_modules/typescript/bin/tsc", "#!/usr/bin/env node\n")
            .symlink("app/node_modules/.bin/tsc", "../typescript/bin/tsc")
            .file("app/node_modules/left-pad/index.d.ts", "export {}\n")
            .file("app/src/index.ts", "export const a = 1;\n")
            .file("app/src/lib/util.ts", "export const b = 2;\n")
            .file("app/src/types.d.ts", "declare const c: number;\n")
            .file("app/dist/app.js", "console.log(1)\n//# sourceMappingURL=app.js.map\n")
            .file(
                "app/dist/app.js.map",
                r#"{"version":3,"file":"app.js","sources":["../src/index.ts"],"mappings":"AAAA"}"#,
            )
            .file("app/dist/keys.map", "a -> b\n"),
    ]);
    let f = image.facts_as("node");
    use Category::*;
    use Evidence::*;
    assert_eq!(
        toolchain(&f),
        vec![
            (
                "app/dist/app.js.map",
                SourceMap,
                Path,
                None,
                "app/dist/app.js.map",
                1
            ),
            ("tsc", NodeBuild, Path, None, "app/node_modules/.bin/tsc", 1),
            (
                "typescript",
                NodeBuild,
                Path,
                None,
                "app/node_modules/typescript",
                1
            ),
            (
                "app/src/**/*.ts",
                SourceTree,
                Path,
                None,
                "app/src/index.ts",
                1
            ),
        ]
    );
    assert_eq!(
        f.toolchain[3].reason,
        "2 TypeScript source files under app/src"
    );
    let pms: Vec<_> = f.package_managers.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(pms, vec!["usr/local/bin/npm"]);
}

#[test]
fn renamed_compiler_is_found_by_its_package() {
    let image = Image::new(vec![
        debian_base(),
        LayerBuilder::new(Compression::Gzip)
            .file(
                "var/lib/dpkg/status",
                installed(&[("libc6", "2.36-9"), ("gcc-12", "12.2.0-14")]),
            )
            .file(
                "var/lib/dpkg/info/gcc-12.list",
                "/.\n/usr\n/usr/bin\n/usr/bin/weird-cc\n/usr/share/doc/gcc-12\n",
            )
            .file_mode("usr/bin/weird-cc", b"\x7fELF renamed gcc", 0o755),
    ]);
    let f = image.facts_as("1000");
    use Category::*;
    use Evidence::*;
    assert_eq!(
        toolchain(&f),
        vec![
            (
                "weird-cc",
                Compiler,
                Package,
                Some("gcc-12"),
                "usr/bin/weird-cc",
                1
            ),
            (
                "gcc-12",
                Compiler,
                Package,
                Some("gcc-12"),
                "var/lib/dpkg/status",
                1
            ),
        ]
    );
    assert_eq!(
        f.toolchain[0].reason,
        "installed by gcc-12 (GCC compiler package)"
    );

    // Purged in a later layer: the final database no longer lists it, and the binary is
    // gone: nothing counts.
    let purged = Image::new(vec![
        debian_base(),
        LayerBuilder::new(Compression::Gzip)
            .file(
                "var/lib/dpkg/status",
                installed(&[("libc6", "2.36-9"), ("gcc-12", "12.2.0-14")]),
            )
            .file("var/lib/dpkg/info/gcc-12.list", "/usr/bin/weird-cc\n")
            .file_mode("usr/bin/weird-cc", b"\x7fELF renamed gcc", 0o755)
            .file_mode("usr/bin/gcc", b"\x7fELF gcc", 0o755),
        LayerBuilder::new(Compression::Gzip)
            .file(
                "var/lib/dpkg/status",
                format!(
                    "{}{}",
                    installed(&[("libc6", "2.36-9")]),
                    dpkg_entry("gcc-12", "12.2.0-14", "deinstall ok config-files")
                ),
            )
            .whiteout("var/lib/dpkg/info/gcc-12.list")
            .whiteout("usr/bin/weird-cc")
            .whiteout("usr/bin/gcc"),
    ]);
    assert!(purged.facts_as("1000").toolchain.is_empty());
}

#[test]
fn alpine_build_base_by_package_and_path() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file("etc/passwd", "root:x:0:0:root:/root:/bin/ash\n")
            .file_mode("bin/busybox", b"\x7fELF busybox", 0o755)
            .hardlink("bin/sh", "bin/busybox")
            .file_mode("sbin/apk", b"\x7fELF apk", 0o755)
            .file(
                "lib/apk/db/installed",
                "P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\n\
                 P:gcc\nV:13.2.1-r0\nA:x86_64\no:gcc\nF:usr/bin\nR:gcc\nR:cc-renamed\n\n\
                 P:musl-dev\nV:1.2.4-r2\nA:x86_64\no:musl\nF:usr/include\nR:stdio.h\n\n\
                 P:build-base\nV:0.5-r3\nA:x86_64\no:build-base\n",
            )
            .file("lib/ld-musl-x86_64.so.1", b"\x7fELF")
            .file_mode("usr/bin/gcc", b"\x7fELF gcc", 0o755)
            .file_mode("usr/bin/cc-renamed", b"\x7fELF gcc", 0o755)
            .file("usr/include/stdio.h", "int puts(const char *);\n"),
    ]);
    let f = image.facts_as("");
    use Category::*;
    use Evidence::*;
    assert_eq!(
        toolchain(&f),
        vec![
            (
                "build-base",
                BuildTool,
                Package,
                Some("build-base"),
                "lib/apk/db/installed",
                0
            ),
            (
                "gcc",
                Compiler,
                Package,
                Some("gcc"),
                "lib/apk/db/installed",
                0
            ),
            (
                "musl-dev",
                DevPackage,
                Package,
                Some("musl-dev"),
                "lib/apk/db/installed",
                0
            ),
            (
                "cc-renamed",
                Compiler,
                Package,
                Some("gcc"),
                "usr/bin/cc-renamed",
                0
            ),
            ("gcc", Compiler, Path, Some("gcc"), "usr/bin/gcc", 0),
            ("usr/include", DevHeaders, Path, None, "usr/include", 0),
        ]
    );
    assert_eq!(f.shell.paths, vec!["bin/busybox", "bin/sh"]);
    assert_eq!(f.package_managers.len(), 1);
    assert_eq!(f.package_managers[0].path, "sbin/apk");
    let apk: Vec<_> = f
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.source.as_deref()))
        .collect();
    assert_eq!(
        apk,
        vec![
            ("build-base", Some("build-base")),
            ("gcc", Some("gcc")),
            ("musl", Some("musl")),
            ("musl-dev", Some("musl"))
        ]
    );
}

#[test]
fn corrupt_databases_become_unknowns_and_good_lines_still_count() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file(
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\nthis is not a passwd line\napp:x:1001:1001::/app:/bin/sh\napp2:x:notanumber:1::/:/bin/sh\n",
            )
            .file(
                "var/lib/dpkg/status",
                format!(
                    "{}garbage without a colon\n\nStatus: install ok installed\nVersion: 1\n",
                    installed(&[("libc6", "2.36-9")])
                ),
            )
            .file("lib/apk/db/installed", b"\x00\x01\x02 binary junk"),
    ]);
    let f = image.facts_as("app");
    assert_eq!(f.user.uid, Some(1001));
    let unknowns: Vec<_> = f
        .unknowns
        .iter()
        .map(|u| {
            (
                u.analyzer.as_str(),
                u.path.as_str(),
                u.reason.as_str(),
                u.deleted,
            )
        })
        .collect();
    assert_eq!(
        unknowns,
        vec![
            (
                "passwd",
                "etc/passwd",
                "2 line(s) are not well-formed passwd entries, first at line 2; 4 line(s) read as the container runtime reads them (missing fields empty, ids that are not numbers 0)",
                false
            ),
            (
                "apk",
                "lib/apk/db/installed",
                "not a text file (NUL bytes); not parsed",
                false
            ),
            (
                "dpkg",
                "var/lib/dpkg/status",
                "2 malformed line(s) skipped, first at line 11; 1 valid entries used",
                false
            ),
        ]
    );
    assert!(f.unknowns.iter().all(|u| u.layer == image.layer(0)));
    assert_eq!(f.packages.len(), 1);

    let json = serde_json::to_value(&f.unknowns[0]).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "analyzer": "passwd", "path": "etc/passwd",
            "reason": "2 line(s) are not well-formed passwd entries, first at line 2; 4 line(s) read as the container runtime reads them (missing fields empty, ids that are not numbers 0)",
            "layer": image.layer(0), "layer_index": 0, "deleted": false
        })
    );
}

#[test]
fn hostile_huge_passwd_is_an_unknown_not_a_user_database() {
    let mut huge = String::from("root:x:0:0::/root:/bin/sh\nappuser:x:1001:1001::/:/bin/sh\n");
    while huge.len() <= 2 * 1024 * 1024 {
        huge.push_str("filler:x:1:1::/:/bin/false\n");
    }
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Zstd).file("etc/passwd", &huge),
    ]);
    let f = image.facts_as("appuser");
    assert_eq!(f.user.uid, None);
    assert!(!f.user.resolved);
    assert_eq!(
        f.user.reason,
        "USER appuser is unresolvable: etc/passwd could not be parsed (see unknowns)"
    );
    assert_eq!(f.unknowns.len(), 1);
    assert_eq!(f.unknowns[0].analyzer, "passwd");
    assert!(
        f.unknowns[0]
            .reason
            .contains("larger than the 1024 KiB limit")
    );
}

#[test]
fn deleted_compiler_does_not_count() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file_mode("usr/bin/gcc", b"\x7fELF", 0o755)
            .file_mode("usr/local/go/bin/go", b"\x7fELF", 0o755)
            .file("usr/local/go/src/go.mod", "module std\n")
            .file("usr/local/go/src/fmt/print.go", "package fmt\n")
            .symlink("usr/bin/cc", "gcc"),
        LayerBuilder::new(Compression::Gzip).whiteout("usr/bin/gcc"),
    ]);
    let f = image.facts_as("1000");
    // `cc` now dangles and `gcc` is gone; the Go toolchain stays (its stdlib sources are
    // part of it, not a source tree).
    let rows = toolchain(&f);
    assert_eq!(
        rows,
        vec![(
            "go",
            Category::LanguageToolchain,
            Evidence::Path,
            None,
            "usr/local/go/bin/go",
            0
        )]
    );
}

#[test]
fn source_trees_are_aggregated() {
    let mut layer = LayerBuilder::new(Compression::Gzip)
        .file("src/app/go.mod", "module example.com/app\n")
        .file("src/app/vendor/x/y.go", "package y\n")
        .file("usr/share/doc/ex/a.c", "int main(){}\n")
        .file("opt/lib/include/api.h", "int f(void);\n")
        .file("headers-only/a.h", "int f(void);\n");
    for i in 0..50 {
        layer = layer
            .file(&format!("src/app/pkg{i}/x.go"), "package x\n")
            .file(&format!("build/src/mod{}/f{i}.c", i % 5), "int f(){}\n");
    }
    let f = Image::new(vec![layer]).facts_as("1000");
    let rows: Vec<_> = f
        .toolchain
        .iter()
        .map(|t| (t.name.as_str(), t.reason.as_str()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                "build/src/mod0",
                "10 C/C++ source files under build/src/mod0"
            ),
            (
                "build/src/mod1",
                "10 C/C++ source files under build/src/mod1"
            ),
            (
                "build/src/mod2",
                "10 C/C++ source files under build/src/mod2"
            ),
            (
                "build/src/mod3",
                "10 C/C++ source files under build/src/mod3"
            ),
            (
                "build/src/mod4",
                "10 C/C++ source files under build/src/mod4"
            ),
            ("src/app/**/*.go", "51 Go source files in module src/app"),
        ]
    );
}

#[test]
fn unknowns_of_replaced_files_are_marked_deleted() {
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip).file("etc/passwd", "garbage\n"),
        LayerBuilder::new(Compression::Gzip).file("etc/passwd", "app:x:10:10::/:/bin/sh\n"),
    ]);
    let f = image.facts_as("app");
    assert_eq!(f.user.uid, Some(10));
    assert_eq!(f.unknowns.len(), 1);
    assert!(f.unknowns[0].deleted);
    assert_eq!(f.unknowns[0].layer_index, 0);
    assert!(
        f.unknowns[0]
            .reason
            .starts_with("1 line(s) are not well-formed")
    );
}
