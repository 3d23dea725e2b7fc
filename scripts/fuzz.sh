#!/usr/bin/env bash
# Builds every fuzz target of fuzz/ (cargo-fuzz + libFuzzer) and runs each for a bounded time
# (docs/fuzzing.md). Fails when a target crashes, times out or runs out of memory, printing the
# input that did it.
#
#   scripts/fuzz.sh                  # short: FUZZ_SECONDS (default 15) per target, corpora untouched
#   scripts/fuzz.sh --long           # long: 600 s per target unless FUZZ_SECONDS says otherwise;
#                                    #   new inputs are added to fuzz/corpus/<target>/, then minimised
#   scripts/fuzz.sh layer_tar admission   # only these targets
#
# Environment:
#   FUZZ_SECONDS    seconds per target (-max_total_time)
#   FUZZ_SANITIZER  address (default) or none; ASan builds on stable with RUSTC_BOOTSTRAP=1 too
#   FUZZ_RSS_MB     libFuzzer's memory limit per target (default 2048)
#   FUZZ_TARGET_DIR the build directory (default ~/.cache/gantry-fuzz/target: a build cache kept
#                   between runs and checkouts, as ~/.cargo is; a cold build of the whole tree
#                   with coverage instrumentation is most of the cost, see docs/fuzzing.md)
#
# cargo-fuzz passes nightly-only `-Z` flags to rustc; RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them, so this runs on a machine with one stable toolchain. cargo-fuzz itself
# is installed into ~/.cache/gantry-fuzz when it is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

long=0
targets=()
for arg in "$@"; do
    case "$arg" in
    --long) long=1 ;;
    -h | --help)
        sed -n '2,22p' "$0"
        exit 0
        ;;
    *) targets+=("$arg") ;;
    esac
done
if [ "$long" -eq 1 ]; then
    seconds=${FUZZ_SECONDS:-600}
else
    seconds=${FUZZ_SECONDS:-15}
fi
sanitizer=${FUZZ_SANITIZER:-address}
rss_mb=${FUZZ_RSS_MB:-2048}
fuzz_root=$HOME/.cache/gantry-fuzz
target_dir=${FUZZ_TARGET_DIR:-$fuzz_root/target}

export RUSTC_BOOTSTRAP=1
export CARGO_INCREMENTAL=0
if ! cargo fuzz --version >/dev/null 2>&1; then
    if [ ! -x "$fuzz_root/bin/cargo-fuzz" ]; then
        echo "==> installing cargo-fuzz into $fuzz_root"
        cargo install cargo-fuzz --locked --root "$fuzz_root"
    fi
    export PATH=$fuzz_root/bin:$PATH
fi

if [ ${#targets[@]} -eq 0 ]; then
    # The files of fuzz/fuzz_targets/ (`cargo fuzz list` would also name the seeds binary).
    for f in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi

echo "==> cargo fuzz build (sanitizer: $sanitizer)"
build=(--sanitizer "$sanitizer" --target-dir "$target_dir")
cargo fuzz build "${build[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
summary=()
failed=0
for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t
    artifacts=fuzz/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    if [ "$long" -eq 1 ]; then
        dirs=("$corpus")
    else
        # New inputs go to a scratch directory: a short run leaves the committed corpus as it is.
        mkdir -p "$work/$t"
        dirs=("$work/$t" "$corpus")
    fi
    echo "==> $t: ${seconds}s"
    log=$work/$t.log
    status=0
    cargo fuzz run "$t" "${build[@]}" "${dirs[@]}" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb="$rss_mb" \
        -malloc_limit_mb="$rss_mb" -print_final_stats=1 -artifact_prefix="$artifacts/" \
        >"$log" 2>&1 || status=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    execs=$(grep -E '^stat::number_of_executed_units:' "$log" | awk '{print $2}' | tail -1 || true)
    if [ "$status" -ne 0 ]; then
        failed=1
        tail -40 "$log"
        input=$(grep -oE '(Test unit|artifact) written to [^ ]+' "$log" | awk '{print $NF}' | tail -1 || true)
        echo "!! $t failed (exit $status); crashing input: ${input:-see the log above}"
        echo "   reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run $t ${build[*]} ${input:-}"
        summary+=("$t: FAILED, input ${input:-?}")
    else
        summary+=("$t: ${execs:-?} execs; ${done_line:-no final status line}")
    fi
done

if [ "$long" -eq 1 ] && [ "$failed" -eq 0 ]; then
    for t in "${targets[@]}"; do
        echo "==> minimising fuzz/corpus/$t"
        cargo fuzz cmin "$t" "${build[@]}" >"$work/$t.cmin.log" 2>&1 ||
            { tail -20 "$work/$t.cmin.log"; failed=1; }
    done
fi

echo "==> fuzz summary (${seconds}s per target)"
printf '    %s\n' "${summary[@]}"
exit "$failed"
