#!/usr/bin/env bash
# The GPU run of the performance issue, for a machine with an NVIDIA GPU and no Rust
# toolchain: a stripped release binary built elsewhere is carried in, with the Vulkan loader
# packages (.gl/*.deb) beside the checkout and python3 with torch and transformers there.
#
#   bash tools/gpu/run.sh BINARY OUT_DIR [CONFIG...]
#
# Runs `seqbridge bench` on every built-in config (or the ones named) in f32 and f16, batch 1
# greedy and batch 8 beam 4, then transformers on CUDA on the same shapes
# (tools/baseline/bench_transformers.py), and writes OUT_DIR/results.json (every run's
# fields) and OUT_DIR/table.md (one row per shape). Each run is bounded in time; a run that
# fails is recorded with its error and the rest go on.
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${1:?usage: run.sh BINARY OUT_DIR [CONFIG...]}
out=${2:?usage: run.sh BINARY OUT_DIR [CONFIG...]}
shift 2
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=(tiny opus-mt bart-base t5-small)
mkdir -p "$out"

# The Vulkan loader, where the machine has none.
if ! ldconfig -p 2>/dev/null | grep -q libvulkan && ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
    "$bin" --version 2>&1
} > "$out/machine.txt"

runs="$out/runs.jsonl"
: > "$runs"
# one ENGINE CONFIG DTYPE BATCH BEAMS: appends {"engine", "shape", "result" | "error"}.
one() {
    local engine=$1 config=$2 dtype=$3 batch=$4 beams=$5 log="$out/last.log" res
    if [ "$engine" = seqbridge ]; then
        timeout 300 "$bin" bench --config "$config" --dtype "$dtype" --batch "$batch" \
            --beams "$beams" --warmup 1 --iters 3 --format json > "$log" 2>&1
    else
        timeout 300 python3 tools/baseline/bench_transformers.py --config "$config" \
            --dtype "$dtype" --batch "$batch" --beams "$beams" --device cuda \
            --warmup 1 --iters 3 > "$log" 2>&1
    fi
    res=$?
    python3 - "$engine" "$config" "$dtype" "$batch" "$beams" "$res" "$log" >> "$runs" <<'PY'
import json, sys
engine, config, dtype, batch, beams, rc, log = sys.argv[1:]
text = open(log, errors="replace").read()
row = {"engine": engine, "config": config, "dtype": dtype, "batch": int(batch), "beams": int(beams)}
last = text.strip().splitlines()[-1] if text.strip() else ""
try:
    row["result"] = json.loads(last) if rc == "0" else None
except ValueError:
    row["result"] = None
if row["result"] is None:
    row["error"] = text[-2000:]
print(json.dumps(row))
PY
}

for config in "${configs[@]}"; do
    for dtype in f32 f16; do
        for shape in "1 1" "8 4"; do
            set -- $shape
            one seqbridge "$config" "$dtype" "$1" "$2"
            one transformers "$config" "$dtype" "$1" "$2"
        done
    done
done

python3 - "$runs" "$out" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
out = sys.argv[2]
json.dump({"machine": open(f"{out}/machine.txt").read().strip(), "runs": runs},
          open(f"{out}/results.json", "w"), indent=1)
def tps(engine, r):
    for x in runs:
        if x["engine"] == engine and all(x[k] == r[k] for k in ("config", "dtype", "batch", "beams")):
            return (x.get("result") or {}).get("tokens_per_s")
    return None
rows = ["| config | dtype | batch | beams | seqbridge tok/s | transformers tok/s | ratio | step ms | roofline step fraction |",
        "|---|---|---|---|---|---|---|---|---|"]
for r in runs:
    if r["engine"] != "seqbridge":
        continue
    s, t = tps("seqbridge", r), tps("transformers", r)
    res = r.get("result") or {}
    frac = (res.get("roofline") or {}).get("step_bandwidth_fraction")
    fmt = lambda v, p=1: "—" if v is None else f"{v:.{p}f}"
    ratio = s / t if s and t else None
    rows.append(f"| {r['config']} | {r['dtype']} | {r['batch']} | {r['beams']} | {fmt(s)} | {fmt(t)} | "
                f"{fmt(ratio, 2)} | {fmt(res.get('step_ms_median'), 2)} | {fmt(frac, 2)} |")
open(f"{out}/table.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
