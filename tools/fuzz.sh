#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 60), with libFuzzer through
# cargo-fuzz (stable Rust, no sanitizer).
#
#   tools/fuzz.sh [SECONDS] [TARGET...]        FUZZ_RUNS=N to stop after N executions
#
# cargo-fuzz on stable: `cargo install cargo-fuzz`, and `-s none` (no sanitizer: those need
# nightly). New corpus entries go to fuzz/target/corpus-work/TARGET, not to the small
# committed seeds in fuzz/corpus/TARGET. A crash leaves its input in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(config checkpoint tokenizer cli)
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi
(cd fuzz && cargo fuzz build -s none)
echo "libFuzzer, ${seconds}s per target: ${targets[*]}"
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
# The targets write each input into a scratch model directory under TMPDIR: on tmpfs that is
# several times faster than on disk.
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && export TMPDIR=/dev/shm
status=0
for t in "${targets[@]}"; do
    work=fuzz/target/corpus-work/$t
    mkdir -p "$work" "fuzz/artifacts/$t"
    log=fuzz/target/fuzz-$t.log
    # libFuzzer's defaults stay: a 2 GB RSS limit, and one malloc over it is a crash too.
    rc=0
    (cd fuzz && cargo fuzz run -s none "$t" "../$work" "corpus/$t" -- \
        -max_total_time="$seconds" -runs="${FUZZ_RUNS:--1}" -print_final_stats=1) >"$log" 2>&1 || rc=1
    [ $rc -eq 0 ] || status=1
    runs=$(grep -o "stat::number_of_executed_units: *[0-9]*" "$log" | grep -o "[0-9]*$" || true)
    echo "$t: ${runs:-?} executions in ${seconds}s$([ $rc -eq 0 ] || echo ", FAILED (see $log)")"
    grep -E "panicked|ERROR: libFuzzer|Test unit written" "$log" || true
done
exit $status
