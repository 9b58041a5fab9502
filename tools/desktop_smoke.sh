#!/usr/bin/env bash
# Runs the real desktop app (crates/desktop) in a virtual X server: lavapipe's Vulkan, then
# llvmpipe GL. Each run translates the default date, takes a screenshot of its window through
# egui, checks it is not blank (the app refuses one with fewer than 16 colours), prints the
# frame times measured during the job and closes the window; a non-zero exit, a missing or
# tiny PNG, or a run past the timeout fails the script.
#   bash tools/desktop_smoke.sh [OUT_DIR] [-- extra app arguments, e.g. --smoke-audio FILE]
# Needs Xvfb (.ci/run installs it: apt-get install xvfb xauth).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
out="${1:-target/desktop-smoke}"
shift || true
[ "${1:-}" = "--" ] && shift
mkdir -p "$out"
# The build the workspace test run has just made (`-p` would resolve other dependency features).
cargo build --workspace --bins
bin="${CARGO_TARGET_DIR:-target}/debug/seqbridge-desktop"
for backend in vulkan gl; do
    png="$out/$backend.png"
    rm -f "$png"
    echo "desktop smoke test on $backend"
    SEQBRIDGE_BACKEND=$backend timeout 600 \
        xvfb-run -a -s "-screen 0 1280x800x24" "$bin" --smoke-test "$png" "$@"
    size=$(stat -c %s "$png")
    if [ "$size" -lt 10000 ]; then
        echo "desktop smoke test on $backend: $png is only $size bytes" >&2
        exit 1
    fi
done
