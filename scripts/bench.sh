#!/usr/bin/env bash
# Gantry benchmarks.
#
#   scripts/bench.sh [section...]      sections: layer_walk full_scan serve (default: all)
#
# Each section is a function `section_<name>` that prints a Markdown table to stdout (progress
# goes to stderr); add a section by writing the function and listing it in SECTIONS.
#
# Environment:
#   BENCH_DATA  where generated inputs live (default target/bench-data; reused between runs)
#   RUNS        runs per measurement; the median is reported (default 3)
#   EVENTS SENDERS REVIEWS IN_FLIGHT   load of the `serve` section (1000 16 10000 200)
#
# Numbers: MB = 10^6 bytes. "seconds" is wall-clock time, "cpu s" user+system time. MB/s
# (uncompressed output) and "vs tool" are computed from cpu s: the walk is single-threaded, so
# on an idle core the two agree, and on a shared machine wall time measures the neighbours.
# Peak RSS is the process's high-water mark.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DATA=${BENCH_DATA:-$ROOT/target/bench-data}
RUNS=${RUNS:-3}
EXAMPLES=$ROOT/target/release/examples
SECTIONS=(layer_walk full_scan serve)

log() { printf '%s\n' "$*" >&2; }

# Median of the numbers on stdin, one per line.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }

# Runs a command once with GNU time; prints "wall_s cpu_s max_rss_kb". Its stdout is discarded.
time_once() {
    local out
    out=$(mktemp)
    /usr/bin/time -f '%e %U %S %M' -o "$out" "$@" >/dev/null
    awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$out"
    rm -f "$out"
}

# Runs a command RUNS times; prints "median_wall median_cpu max_rss_kb".
time_runs() {
    local samples=()
    for _ in $(seq "$RUNS"); do samples+=("$(time_once "$@")"); done
    printf '%s\n' "${samples[@]}" | awk '{ print $1 }' | median | tr '\n' ' '
    printf '%s\n' "${samples[@]}" | awk '{ print $2 }' | median | tr '\n' ' '
    printf '%s\n' "${samples[@]}" | awk '{ print $3 }' | sort -n | tail -1
}

# Value of key=value in a line.
field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

require_tools() {
    # igzip (ISA-L, the fastest gzip decompressor around) is in Debian's `isal` package.
    command -v igzip >/dev/null || { log "installing isal for igzip"; apt-get install -y isal >&2; }
    command -v zstd >/dev/null || apt-get install -y zstd >&2
    [ -x /usr/bin/time ] || apt-get install -y time >&2
}

build_examples() {
    log "building release examples"
    cargo build --release -p gantry-layer --examples >&2
}

# The generator is deterministic: regenerate only when it changed.
generate_layers() {
    local stamp
    stamp=$(sha256sum crates/layer/examples/gen_layer.rs | cut -c1-16)
    if [[ -f $DATA/layer.tar.zst && $(cat "$DATA/.stamp" 2>/dev/null) == "$stamp" ]]; then
        return
    fi
    log "generating benchmark layers in $DATA"
    "$EXAMPLES/gen_layer" "$DATA" >&2
    echo "$stamp" >"$DATA/.stamp"
}

# One table row. Args: compression input_mb uncompressed_mb tool wall cpu rss_kb reference_cpu
row() {
    local mbps ratio
    mbps=$(awk -v u="$3" -v s="$6" 'BEGIN { printf "%.0f", u / s }')
    ratio=$(awk -v r="$8" -v s="$6" 'BEGIN { printf "%.2f", r / s }')
    printf '| %s | %s | %s | %s | %.2f | %.2f | %s | %s | %.1f |\n' \
        "$1" "$2" "$3" "$4" "$5" "$6" "$mbps" "$ratio" "$(awk -v k="$7" 'BEGIN { print k / 1024 }')"
}

# walk_bench measures itself (it hashes the blob first, outside its timed region, to learn the
# digest). Prints "median_wall median_cpu max_rss_kb uncompressed_mb".
walker_runs() {
    local blob=$1 compression=$2 mode=$3 lines=()
    for _ in $(seq "$RUNS"); do lines+=("$("$EXAMPLES/walk_bench" "$blob" "$compression" "$mode")"); done
    local l
    for l in "${lines[@]}"; do field seconds "$l"; done | median | tr '\n' ' '
    for l in "${lines[@]}"; do field cpu_seconds "$l"; done | median | tr '\n' ' '
    for l in "${lines[@]}"; do awk -v m="$(field peak_rss_mb "$l")" 'BEGIN { printf "%d\n", m * 1024 }'; done | sort -n | tail -1 | tr '\n' ' '
    field uncompressed_mb "${lines[0]}"
}

section_layer_walk() {
    require_tools
    build_examples
    generate_layers
    local load_before
    load_before=$(cut -d' ' -f1-3 /proc/loadavg)
    local sha_mbps line
    # sha256 throughput from on-CPU time, so another process's load does not skew the floor.
    sha_mbps=$(for _ in $(seq "$RUNS"); do
        line=$("$EXAMPLES/walk_bench" "$DATA/layer.tar" none sha256)
        awk -v u="$(field uncompressed_mb "$line")" -v c="$(field cpu_seconds "$line")" 'BEGIN { printf "%.0f\n", u / c }'
    done | median)
    echo "### Layer walk ($RUNS runs, median; $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
    echo
    echo "| compression | input MB | uncompressed MB | tool | seconds | cpu s | MB/s | vs tool | peak RSS MB |"
    echo "|---|---|---|---|---|---|---|---|---|"
    local spec file compression tool input uncompressed ref_cpu wall cpu rss mode modes label floor w c r u
    for spec in "gzip layer.tar.gz igzip -dc" "zstd layer.tar.zst zstd -qdc" "none layer.tar openssl dgst -sha256"; do
        read -r compression file tool <<<"$spec"
        file=$DATA/$file
        input=$(awk -v b="$(stat -c %s "$file")" 'BEGIN { printf "%.1f", b / 1e6 }')
        uncompressed=$(awk -v b="$(stat -c %s "$DATA/layer.tar")" 'BEGIN { printf "%.1f", b / 1e6 }')
        cat "$file" >/dev/null # page cache
        log "$compression: $tool"
        # shellcheck disable=SC2086 # $tool is a command with arguments
        read -r wall cpu rss <<<"$(time_runs $tool "$file")"
        ref_cpu=$cpu
        row "$compression" "$input" "$uncompressed" "\`$tool\`" "$wall" "$cpu" "$rss" "$ref_cpu"
        modes=(walk)
        if [[ $compression != none ]]; then
            # The least one core can do: the tool's decompression plus sha256 of both streams.
            floor=$(awk -v t="$cpu" -v i="$input" -v u="$uncompressed" -v s="$sha_mbps" \
                'BEGIN { printf "%.2f", t + (i + u) / s }')
            printf '| %s | %s | %s | %s | - | %s | %.0f | %.2f | - |\n' "$compression" "$input" "$uncompressed" \
                "(computed) ${tool%% *} + sha256 of both streams" "$floor" \
                "$(awk -v u="$uncompressed" -v s="$floor" 'BEGIN { print u / s }')" \
                "$(awk -v r="$ref_cpu" -v s="$floor" 'BEGIN { print r / s }')"
            modes+=(inflate-hash inflate)
        fi
        for mode in "${modes[@]}"; do
            log "$compression: walk_bench $mode"
            read -r w c r u <<<"$(walker_runs "$file" "$compression" "$mode")"
            case $mode in
            walk) label="**gantry walk**" ;;
            inflate-hash) label="decompress + sha256 of both streams, no tar (Rust)" ;;
            inflate) label="decompress only (Rust)" ;;
            esac
            row "$compression" "$input" "$u" "$label" "$w" "$c" "$r" "$ref_cpu"
        done
    done
    echo
    echo "sha256 alone (sha2 crate, SHA-NI): $sha_mbps MB/s per CPU second." \
        "Load average before/after: $load_before / $(cut -d' ' -f1-3 /proc/loadavg)."
}

# --- full_scan: gantry scan (checks + SBOM) against Trivy and Syft on the same archives ---

# Trivy and Syft are optional: when both are found ($TRIVY/$SYFT, else on PATH, else in
# $PEERS_DIR/bin) their rows are measured beside Gantry's; otherwise only Gantry's are. They are
# not on the package registries this project installs from; install them from their releases
# (https://trivy.dev/latest/getting-started/installation/, https://github.com/anchore/syft#installation)
# or point TRIVY and SYFT at the binaries.
PEERS=${PEERS_DIR:-$HOME/.cache/gantry-peers}

find_peer() { # NAME [explicit path]: prints the binary's path, or nothing
    if [[ -n ${2:-} ]]; then [[ -x $2 ]] && echo "$2"; return 0; fi
    command -v "$1" 2>/dev/null || { [[ -x $PEERS/bin/$1 ]] && echo "$PEERS/bin/$1"; } || true
}

require_peers() {
    TRIVY_BIN=$(find_peer trivy "${TRIVY:-}")
    SYFT_BIN=$(find_peer syft "${SYFT:-}")
    if [[ -z $TRIVY_BIN || -z $SYFT_BIN ]]; then
        log "Trivy or Syft not found: measuring Gantry alone (set TRIVY and SYFT, or install them; see the top of section full_scan)"
        TRIVY_BIN="" SYFT_BIN=""
    fi
    command -v debootstrap >/dev/null || { log "installing debootstrap"; apt-get install -y debootstrap >&2; }
}

# Real images from real package managers: a debootstrap'd Debian (one layer) and a Python app
# on it (base + python3 + a pip install + the app). Built once, reused.
build_scan_images() {
    local images=$DATA/images
    [[ -f $images/.done-v1 ]] && return
    mkdir -p "$images"
    local root=$images/rootfs-base py=$images/rootfs-python site=$images/site-packages app=$images/app
    if [[ ! -f $root/etc/os-release ]]; then
        log "debootstrap --variant=minbase bookworm (a few minutes)"
        rm -rf "$root"
        debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >&2
        rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/proc/* "$root"/sys/* "$root"/dev/*
    fi
    if [[ ! -x $py/usr/bin/python3 ]]; then
        log "debootstrap with python3"
        rm -rf "$py"
        debootstrap --variant=minbase --include=python3,python3-pip bookworm "$py" http://deb.debian.org/debian >&2
        rm -rf "$py"/var/cache/apt/archives/*.deb "$py"/proc/* "$py"/sys/* "$py"/dev/*
    fi
    if [[ ! -d $site/usr ]]; then
        log "pip install into the app layer"
        rm -rf "$site"
        python3 -m pip install -q --no-compile --root "$site" --prefix /usr/local \
            numpy pandas requests flask >&2
    fi
    mkdir -p "$app/app"
    printf 'import flask\napp = flask.Flask(__name__)\n' >"$app/app/main.py"
    cargo build --release -p gantry-testkit --example image_from_dirs >&2
    "$EXAMPLES/image_from_dirs" "$images/debian.tar" bench/debian:bookworm gzip "$root" >&2
    "$EXAMPLES/image_from_dirs" "$images/python-app.tar" bench/python-app:1 gzip "$py" "$site" "$app" >&2
    touch "$images/.done-v1"
}

# Trivy's time over this one ("—" when Trivy was not measured).
vs_trivy() { if [[ -n $1 ]]; then awk -v t="$1" -v w="$2" 'BEGIN { printf "%.2f", t / w }'; else echo "—"; fi; }

# Prints "median_wall median_cpu max_rss_kb" of a command that may exit 0 or 1 (allow/deny).
scan_runs() {
    time_runs bash -c '"$@"; [ $? -le 1 ]' _ "$@"
}

section_full_scan() {
    require_tools
    require_peers
    build_scan_images
    cargo build --release >&2
    local gantry=$ROOT/target/release/gantry trivy=$TRIVY_BIN syft=$SYFT_BIN
    local out=$DATA/scan-out
    mkdir -p "$out"
    echo "### Full scan ($RUNS runs, median; $(nproc) CPUs)"
    echo
    echo "| image | size | tool | seconds | cpu s | peak RSS MB | vs Trivy |"
    echo "|---|---|---|---|---|---|---|"
    local image tar size wall cpu rss trivy_wall
    for image in debian python-app; do
        tar=$DATA/images/$image.tar
        size=$(awk -v b="$(stat -c %s "$tar")" 'BEGIN { printf "%.0f MB", b / 1e6 }')
        cat "$tar" >/dev/null
        trivy_wall=""
        if [[ -n $trivy ]]; then
            log "$image: trivy"
            read -r wall cpu rss <<<"$(scan_runs "$trivy" image --input "$tar" --cache-backend memory --offline-scan \
                --skip-db-update --skip-java-db-update -q --list-all-pkgs --format cyclonedx -o "$out/$image.trivy.json")"
            trivy_wall=$wall
            printf '| %s | %s | trivy %s (`image --input`, memory cache) | %.2f | %.2f | %.0f | 1.00 |\n' "$image" "$size" "$("$trivy" --version 2>/dev/null | awk 'NR == 1 { print $2 }')" "$wall" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
            log "$image: syft"
            read -r wall cpu rss <<<"$(scan_runs "$syft" scan "docker-archive:$tar" -q -o "cyclonedx-json@1.6=$out/$image.syft.json")"
            printf '| %s | %s | syft %s | %.2f | %.2f | %.0f | %s |\n' "$image" "$size" "$("$syft" version 2>/dev/null | awk '/^Version:/ { print $2 }')" "$wall" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$(vs_trivy "$trivy_wall" "$wall")"
        fi
        log "$image: gantry cold"
        read -r wall cpu rss <<<"$(scan_runs bash -c 'd=$(mktemp -d); "$0" scan "$1" --cache-dir "$d" --format json -o "$2" --sbom "$3"; rc=$?; rm -rf "$d"; exit $rc' \
            "$gantry" "docker-archive:$tar" "$out/$image.gantry-report.json" "$out/$image.gantry.cdx.json")"
        printf '| %s | %s | **gantry scan, cold cache** (checks + SBOM) | %.2f | %.2f | %.0f | **%s** |\n' "$image" "$size" "$wall" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$(vs_trivy "$trivy_wall" "$wall")"
        log "$image: gantry warm"
        "$gantry" scan "docker-archive:$tar" --cache-dir "$out/warm-cache" --format json -o /dev/null >/dev/null 2>&1 || true
        read -r wall cpu rss <<<"$(scan_runs "$gantry" scan "docker-archive:$tar" --cache-dir "$out/warm-cache" --format json -o /dev/null --sbom /dev/null)"
        printf '| %s | %s | **gantry scan, warm cache** | %.3f | %.3f | %.0f | %s |\n' "$image" "$size" "$wall" "$cpu" "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$(vs_trivy "$trivy_wall" "$wall")"
    done
    echo
    echo "SBOMs and reports of the last run: $out."
}

# gantry serve under load: webhook intake latency (1,000 push events with redeliveries from 16
# senders) and admission latency for a stored verdict (10,000 reviews, 200 in flight over
# kept-alive HTTPS). Everything on loopback: the Debian registry and the release binary.
section_serve() {
    [ -x /usr/bin/docker-registry ] || { log "installing docker-registry"; apt-get install -y docker-registry >&2; }
    log "building the release binary and the serve benchmark"
    cargo build --release >&2
    cargo build --release -p gantry-server --example serve_bench >&2
    echo "### gantry serve under load ($(nproc) CPUs; load generator on the same machine)"
    echo
    GANTRY_BIN=$ROOT/target/release/gantry "$EXAMPLES/serve_bench" "${EVENTS:-1000}" "${SENDERS:-16}" "${REVIEWS:-10000}" "${IN_FLIGHT:-200}"
    echo
}

main() {
    local sections=("$@")
    [[ ${#sections[@]} -gt 0 ]] || sections=("${SECTIONS[@]}")
    local s
    for s in "${sections[@]}"; do
        declare -F "section_$s" >/dev/null || { log "unknown section: $s (have: ${SECTIONS[*]})"; exit 2; }
        "section_$s"
    done
}

main "$@"
