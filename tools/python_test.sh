#!/usr/bin/env bash
# The Python package's tests (README.md "Python"): builds the `seqbridge` wheel with maturin
# into a virtual environment kept under target/, installs it with pytest, numpy and
# ray[data,serve], and runs crates/python/tests: parity with the CLI, errors, streaming,
# threads, and the Ray examples on a local two-node Ray cluster. Called by tools/test.sh;
# runnable alone after `cargo test --workspace` (it needs target/debug/seqbridge).
#
# Installs are idempotent: the venv is created once and pip runs only when the requirement
# list changes (a stamp file). Set SEQBRIDGE_PY_VENV to keep the venv elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { echo "python_test: $1 (${SECONDS}s)"; }
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

venv="$(realpath -m "${SEQBRIDGE_PY_VENV:-target/python-venv}")"
# Ray below 2.64, which drops the map_batches remote args (scheduling_strategy) the job uses.
requirements=(maturin pytest pytest-timeout numpy "ray[data,serve]>=2.60,<2.64")
stamp="$venv/.seqbridge-requirements"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "${requirements[*]}" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
    echo "${requirements[*]}" > "$stamp"
fi

phase "venv ready"
# The CLI the tests compare with: already built by `cargo test --workspace` (then a no-op).
cargo test --workspace --no-run --quiet
# The wheel (dev profile: dependencies optimised, as for the tests), then the package.
rm -rf target/wheels/seqbridge-*.whl
"$venv/bin/maturin" build --quiet --manifest-path crates/python/Cargo.toml --out target/wheels \
    --compatibility linux
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
    target/wheels/seqbridge-*.whl

phase "wheel installed"
# The CLI binary in the build directory cargo used (CARGO_TARGET_DIR when set).
export SEQBRIDGE_CLI="${SEQBRIDGE_CLI:-$(realpath -m "${CARGO_TARGET_DIR:-target}")/debug/seqbridge}"
# Bounded: every Ray wait has its own timeout, and the whole run has this one.
cd crates/python
timeout 3600 "$venv/bin/python" -m pytest -q -p no:cacheprovider tests "$@"
phase "pytest on the default adapter done"
# Again on GL (llvmpipe), the CLI too, but for the real-weight Whisper and the Ray tests
# (minutes each, and nothing in them depends on the backend that the rest does not cover).
SEQBRIDGE_BACKEND=gl timeout 1800 "$venv/bin/python" -m pytest -q -p no:cacheprovider tests \
    --ignore tests/test_ray.py --ignore tests/test_transcribe.py "$@"
phase "pytest on GL done"
