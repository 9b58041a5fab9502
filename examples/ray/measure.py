"""The figures of README.md "Python" / "Ray": Ray Data throughput with 1 and 2 actors, and
the cost of the Ray Serve hop per request (HTTP through Serve vs a direct call in-process).
Starts its own local cluster (two nodes, two CPU slots each: one for an actor, one for reading) and stops it at the end.

    python examples/ray/measure.py [--repeat 20] [--requests 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from ray import serve

import seqbridge
import serve_app
import translate_job
from local_cluster import free_port, local_cluster

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = str(ROOT / "assets" / "date-normalizer")
DATES = ROOT / "assets" / "samples" / "dates.txt"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeat", type=int, default=20, help="copies of dates.txt in the batch job")
    p.add_argument("--requests", type=int, default=30, help="sequential requests timed")
    a = p.parse_args()
    lines = DATES.read_text(encoding="utf-8").splitlines()
    out: dict = {"lines": len(lines) * a.repeat}

    # In-process, for comparison: the whole file in batches of 64.
    model = seqbridge.Model(SHIPPED)
    model.translate(lines[:1])
    t = time.perf_counter()
    model.translate(lines * a.repeat, batch_size=64)
    out["direct_batch_lines_per_s"] = len(lines) * a.repeat / (time.perf_counter() - t)

    with tempfile.TemporaryDirectory() as tmp, local_cluster(
        nodes=2, cpus_per_node=2, runtime_env={"working_dir": str(Path(__file__).parent)}
    ):
        src = Path(tmp) / "in.txt"
        src.write_text("\n".join(lines * a.repeat) + "\n", encoding="utf-8")
        for actors in (1, 2):
            t = time.perf_counter()
            got, nodes = translate_job.translate_file(str(src), SHIPPED, batch_size=64, concurrency=actors)
            secs = time.perf_counter() - t
            out[f"data_{actors}_actor_s"] = secs
            out[f"data_{actors}_actor_lines_per_s"] = len(got) / secs
            out[f"data_{actors}_actor_nodes"] = len(nodes)

        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")
        for wait in (0.0, 0.05):
            serve.run(serve_app.build_app(SHIPPED, max_batch_size=8, batch_wait_timeout_s=wait), name="m", route_prefix="/t")
            url = f"http://127.0.0.1:{port}/t"

            def post(text: str) -> str:
                req = urllib.request.Request(url, data=json.dumps({"text": text}).encode())
                with urllib.request.urlopen(req, timeout=600) as r:
                    return json.loads(r.read())["translation"]

            post(lines[0])
            # Alternated with direct calls of the same sentence, so that the load of a shared
            # machine weighs on both alike.
            lat, direct = [], []
            for i in range(a.requests):
                text = lines[i % len(lines)]
                t = time.perf_counter()
                post(text)
                lat.append(time.perf_counter() - t)
                t = time.perf_counter()
                model.translate([text])
                direct.append(time.perf_counter() - t)
            out[f"serve_wait_{wait}_ms_median"] = 1000 * statistics.median(lat)
            out[f"direct_vs_wait_{wait}_ms_median"] = 1000 * statistics.median(direct)
            out[f"hop_wait_{wait}_ms_median"] = 1000 * statistics.median(x - y for x, y in zip(lat, direct))
            serve.delete("m")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
