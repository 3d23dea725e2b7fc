use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use gantry_model::oci::Compression;
use gantry_testkit::{BuiltImage, ImageBuilder, LayerBuilder, MediaTypes};

/// The committed demo image (README's first command inspects it).
pub fn demo_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo")
}

/// The recipe of the demo image: a Debian-like base, an app layer, a cleanup layer that
/// deletes a build leftover and a secret (which still ship in layer 1), and a non-root user.
pub fn demo_image() -> BuiltImage {
    let base = LayerBuilder::new(Compression::Gzip)
        .dir("etc")
        .file("usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n")
        .symlink("etc/os-release", "../usr/lib/os-release")
        .file("etc/passwd", "root:x:0:0:root:/root:/bin/bash\napp:x:10001:10001::/home/app:/usr/sbin/nologin\n")
        .file("etc/group", "root:x:0:\napp:x:10001:\n")
        .file_mode("bin/sh", b"\x7fELF fake shell", 0o755)
        .hardlink("bin/bash", "bin/sh");
    let app = LayerBuilder::new(Compression::Zstd)
        .file_owned("app/server", b"\x7fELF fake server", 0o755, 10001, 10001)
        .file("app/config.yaml", "listen: :8080\n")
        .file("app/.env", "API_TOKEN=not-a-real-token\n")
        .file("app/build/main.o", vec![0u8; 4096]);
    let cleanup = LayerBuilder::new(Compression::Gzip)
        .whiteout("app/.env")
        .whiteout("app/build");
    ImageBuilder::new()
        .media_types(MediaTypes::Oci)
        .user("app")
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .entrypoint(["/app/server"])
        .cmd(["--config", "/app/config.yaml"])
        .workdir("/app")
        .exposed_port("8080/tcp")
        .label("org.opencontainers.image.title", "gantry-demo")
        .annotation(
            "org.opencontainers.image.base.name",
            "docker.io/library/debian:bookworm-slim",
        )
        .layer_with_history(base, "ADD rootfs.tar.gz / # buildkit")
        .empty_history("CMD [\"bash\"]")
        .layer_with_history(app, "COPY --chown=app:app app /app # buildkit")
        .layer_with_history(cleanup, "RUN rm -rf /app/.env /app/build # buildkit")
        .build()
        .expect("demo image builds")
}

/// Runs the gantry binary with `args` and an isolated cache directory (also its HOME, so no
/// developer's `~/.docker/config.json` leaks in).
pub fn gantry(cache: &Path, args: &[&str]) -> Output {
    gantry_env(cache, args, &[])
}

/// [`gantry`] with extra environment variables.
pub fn gantry_env(cache: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gantry"));
    cmd.args(args)
        .env("GANTRY_CACHE_DIR", cache)
        .env("HOME", cache)
        .env_remove("DOCKER_CONFIG")
        .env_remove("GANTRY_REGISTRY_USERNAME")
        .env_remove("GANTRY_REGISTRY_PASSWORD")
        .env_remove("GANTRY_INSECURE_REGISTRIES");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("gantry runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `gantry inspect --format json` and parses the report; fails with stderr shown.
pub fn inspect_json(cache: &Path, image: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["inspect", image, "--format", "json"];
    args.extend_from_slice(extra);
    let out = gantry(cache, &args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "gantry {args:?} failed:\n{}",
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad JSON ({e}):\n{}", stdout(&out)))
}

/// Runs gantry expecting exit code 2; returns stderr.
pub fn expect_error(cache: &Path, args: &[&str]) -> String {
    let out = gantry(cache, args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "gantry {args:?} should fail with 2; stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(!err.contains("panicked"), "panic: {err}");
    err
}
