//! Cross-checks against the real tools, on artifacts they build at test time. Ignored by
//! default (the suite stays self-contained); run with `--ignored` where the tools are
//! installed: `apt-get install rpm golang-go`, `cargo install cargo-auditable`.

use std::path::Path;
use std::process::Command;

use gantry_analyze::Ecosystem;
use gantry_model::oci::Compression;
use gantry_testkit::LayerBuilder;

use crate::Image;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[test]
#[ignore = "needs rpm and rpmbuild"]
fn rpmdb_written_by_rpm() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("top");
    let spec = top.join("SPECS/hello.spec");
    write(
        &spec,
        "Name: hello-gantry\nVersion: 1.2.3\nRelease: 4.el9\nEpoch: 2\nSummary: t\n\
         License: MIT AND Apache-2.0\nBuildArch: noarch\nRequires: /bin/sh\nProvides: hello-cap\n\
         %description\nt\n%install\nmkdir -p %{buildroot}/usr/share/hello\n\
         echo hi > %{buildroot}/usr/share/hello/a.txt\n%files\n/usr/share/hello/a.txt\n",
    );
    run(Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("-bb")
        .arg(&spec));
    let rpm = top.join("RPMS/noarch/hello-gantry-1.2.3-4.el9.noarch.rpm");
    let db = dir.path().join("db");
    let rpm_cmd = |args: &[&str]| {
        let mut c = Command::new("rpm");
        c.arg("--dbpath")
            .arg(&db)
            .args(["--define", "_db_backend sqlite"])
            .args(args);
        c
    };
    run(&mut rpm_cmd(&["--initdb"]));
    run(rpm_cmd(&["-i", "--justdb", "--nodeps", "--ignoreos", "--ignorearch"]).arg(&rpm));
    let want = run(&mut rpm_cmd(&[
        "-qa",
        "--qf",
        "%{NAME} %{EPOCHNUM}:%{VERSION}-%{RELEASE} %{ARCH} %{LICENSE}\n",
    ]));
    let image = Image::new(vec![
        LayerBuilder::new(Compression::Gzip)
            .file("etc/os-release", "ID=\"rhel\"\nVERSION_ID=\"9.4\"\n")
            .file(
                "var/lib/rpm/rpmdb.sqlite",
                std::fs::read(db.join("rpmdb.sqlite")).unwrap(),
            )
            .file(
                "var/lib/rpm/rpmdb.sqlite-wal",
                std::fs::read(db.join("rpmdb.sqlite-wal")).unwrap(),
            ),
    ]);
    assert!(
        image.reports[0].unknowns.is_empty(),
        "{:?}",
        image.reports[0].unknowns
    );
    let got: String = image
        .packages()
        .iter()
        .map(|p| {
            let v = if p.version.contains(':') {
                p.version.clone()
            } else {
                format!("0:{}", p.version)
            };
            format!(
                "{} {v} {} {}\n",
                p.name,
                p.arch.as_deref().unwrap_or(""),
                p.licenses.join(" ")
            )
        })
        .collect();
    assert_eq!(got, want);
    let p = &image.packages()[0];
    assert_eq!(
        p.purl,
        "pkg:rpm/rhel/hello-gantry@1.2.3-4.el9?arch=noarch&distro=rhel-9.4&epoch=2"
    );
    assert_eq!(p.files, vec!["usr/share/hello/a.txt"]);
    assert_eq!(p.source.as_deref(), Some("hello-gantry"));
}

#[test]
#[ignore = "needs go"]
fn go_binary_built_by_go() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("go.mod"),
        "module example.com/hello\n\ngo 1.18\n\nrequire example.com/dep v1.2.3\n\nreplace example.com/dep => ./dep\n",
    );
    write(&d.join("dep/go.mod"), "module example.com/dep\n\ngo 1.18\n");
    write(
        &d.join("dep/dep.go"),
        "package dep\n\nfunc Hello() string { return \"hi\" }\n",
    );
    write(
        &d.join("main.go"),
        "package main\n\nimport (\n\t\"debug/buildinfo\"\n\t\"fmt\"\n\t\"example.com/dep\"\n)\n\nfunc main() { fmt.Println(dep.Hello(), buildinfo.ReadFile) }\n",
    );
    run(Command::new("go")
        .current_dir(d)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .args(["build", "-o", "hello", "."]));
    let version_m = run(Command::new("go")
        .current_dir(d)
        .args(["version", "-m", "hello"]));
    let go_version = version_m.split_whitespace().nth(1).unwrap().to_string();
    let binary = std::fs::read(d.join("hello")).unwrap();
    let image = Image::new(vec![LayerBuilder::new(Compression::Gzip).file_mode(
        "usr/local/bin/hello",
        &binary,
        0o755,
    )]);
    assert!(
        image.reports[0].unknowns.is_empty(),
        "{:?}",
        image.reports[0].unknowns
    );
    let got: Vec<(String, String)> = image
        .packages()
        .iter()
        .filter(|p| p.ecosystem == Ecosystem::Golang)
        .map(|p| (p.name.clone(), p.version.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("example.com/dep".to_string(), "v1.2.3".to_string()),
            ("example.com/hello".to_string(), "(devel)".to_string()),
            ("stdlib".to_string(), go_version),
        ],
        "go version -m says:\n{version_m}"
    );
}

#[test]
#[ignore = "needs cargo-auditable"]
fn rust_binary_built_by_cargo_auditable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("Cargo.toml"),
        "[package]\nname = \"audited\"\nversion = \"0.3.1\"\nedition = \"2021\"\n\n[workspace]\n",
    );
    write(&d.join("src/main.rs"), "fn main() { println!(\"hi\"); }\n");
    run(Command::new("cargo")
        .current_dir(d)
        .env("CARGO_TARGET_DIR", d.join("target"))
        .args(["auditable", "build", "--release", "--offline", "-q"]));
    for strip in [false, true] {
        let path = d.join("target/release/audited");
        if strip {
            run(Command::new("strip").arg(&path));
        }
        let image = Image::new(vec![LayerBuilder::new(Compression::Zstd).file_mode(
            "usr/local/bin/audited",
            std::fs::read(&path).unwrap(),
            0o755,
        )]);
        assert!(
            image.reports[0].unknowns.is_empty(),
            "{:?}",
            image.reports[0].unknowns
        );
        let got: Vec<_> = image
            .packages()
            .iter()
            .map(|p| (p.ecosystem, p.name.clone(), p.purl.clone()))
            .collect();
        assert_eq!(
            got,
            vec![(
                Ecosystem::Cargo,
                "audited".to_string(),
                "pkg:cargo/audited@0.3.1".to_string()
            )],
            "stripped: {strip}"
        );
    }
}
