#!/usr/bin/env bash
# Soak test (issue 13): 2,000 generate/score calls in one process on Vulkan and on GL, with
# the GPU buffer count and the resident memory checked flat (tests/models/soak.rs).
# SEQBRIDGE_SOAK_CALLS=N changes the number of calls.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
for backend in vulkan gl; do
    SEQBRIDGE_BACKEND=$backend cargo test --test models -- --ignored --nocapture soak::
done
