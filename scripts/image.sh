#!/usr/bin/env bash
# Builds Gantry's container image without a daemon, as an OCI image layout in OUT_DIR
# (`gantry scan oci:OUT_DIR` reads it), and optionally pushes it.
#
#   scripts/image.sh OUT_DIR [--push REGISTRY/REPO[:TAG]] [--insecure-registry HOST:PORT]
#
# What it does:
# 1. Builds the release binary with `cargo auditable` (installed with `cargo install --locked
#    cargo-auditable` when missing; GANTRY_AUDITABLE=0 skips it), which embeds the list of
#    crates compiled in (a `.dep-v0` section) so the image's SBOM — Gantry's, Trivy's, Syft's —
#    lists them. Paths are remapped (`--remap-path-prefix`) so the binary does not depend on
#    where the checkout or the cargo home is; it builds in target/image/ so these flags do
#    not invalidate the ordinary target/release/.
# 2. Strips debug info from a copy (`objcopy --strip-debug`; symbols stay for backtraces).
# 3. Runs gantry-imagebuild (crates/imagebuild): FROM scratch, the binary at
#    /usr/local/bin/gantry, exactly the shared libraries `ldd` resolves plus the loader, the
#    machine's CA bundle (Debian's ca-certificates), /etc/passwd and /etc/group with nonroot
#    65532, USER 65532:65532, no shell, dpkg records of the Debian packages those files come
#    from, and the org.opencontainers.image.* labels and annotations.
#
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (default: the commit time of HEAD), so
# the same commit built on the same toolchain and distribution gives the same digest. The
# script prints the manifest digest, and with --push the pinned reference to deploy:
# REGISTRY/REPO@sha256:…  (docs/admission.md, "The Gantry image").
#
# Environment: SOURCE_DATE_EPOCH; GANTRY_SOURCE_URL (org.opencontainers.image.source, default
# `git remote get-url origin`; no label when neither is known); GANTRY_REGISTRY_USERNAME and
# GANTRY_REGISTRY_PASSWORD for --push (else the Docker config file); GANTRY_AUDITABLE=0.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

usage() { echo "usage: scripts/image.sh OUT_DIR [--push REF] [--insecure-registry HOST:PORT]" >&2; exit 2; }
[ $# -ge 1 ] || usage
OUT=$1
shift
extra=()
while [ $# -gt 0 ]; do
    case $1 in
        --push) [ $# -ge 2 ] || usage; extra+=(--push "$2"); shift 2 ;;
        --insecure-registry) [ $# -ge 2 ] || usage; extra+=(--insecure-registry "$2"); shift 2 ;;
        *) usage ;;
    esac
done

log() { printf '==> %s\n' "$*" >&2; }

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null) ||
        { echo "scripts/image.sh: not a git checkout: set SOURCE_DATE_EPOCH" >&2; exit 2; }
fi
export SOURCE_DATE_EPOCH
# The same revision in the label and in `gantry --version` (crates/cli/build.rs reads it).
if [ -z "${GANTRY_GIT_REVISION:-}" ]; then
    GANTRY_GIT_REVISION=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
    if [ "$GANTRY_GIT_REVISION" != unknown ] &&
        [ -n "$(git --no-optional-locks status --porcelain --untracked-files=no 2>/dev/null)" ]; then
        GANTRY_GIT_REVISION=$GANTRY_GIT_REVISION-dirty
    fi
fi
export GANTRY_GIT_REVISION
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
source_url=${GANTRY_SOURCE_URL:-$(git remote get-url origin 2>/dev/null || true)}
source_args=()
[ -z "$source_url" ] || source_args=(--source "$source_url")

target=$ROOT/target/image
export RUSTFLAGS="${RUSTFLAGS:-} --remap-path-prefix=$ROOT=/gantry --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo"
if [ "${GANTRY_AUDITABLE:-1}" != 0 ]; then
    if ! cargo auditable --version >/dev/null 2>&1; then
        log "installing cargo-auditable (crates.io) to record the crates compiled into the binary"
        cargo install --locked cargo-auditable
    fi
    log "cargo auditable build --release (in target/image)"
    cargo auditable build --release --locked --bin gantry --target-dir "$target"
else
    log "cargo build --release (in target/image; GANTRY_AUDITABLE=0: the SBOM will not list the crates)"
    cargo build --release --locked --bin gantry --target-dir "$target"
fi
log "building gantry-imagebuild"
cargo build --release --locked -p gantry-imagebuild --target-dir "$target"

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
objcopy --strip-debug "$target/release/gantry" "$stage/gantry"

log "assembling the image ($version, $GANTRY_GIT_REVISION, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH) into $OUT"
rm -rf "$OUT"
"$target/release/gantry-imagebuild" --binary "$stage/gantry" --out "$OUT" \
    --version "$version" --revision "$GANTRY_GIT_REVISION" --tag "$version" \
    "${source_args[@]}" "${extra[@]}"
