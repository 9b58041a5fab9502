"""The Ray examples (examples/ray/) on a real local Ray cluster: a head node and a second
node started with `ray start` on loopback (examples/ray/local_cluster.py), two CPU slots
each, torn down at the end (also when a test fails). Every wait is bounded."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from ray import serve

from conftest import DATES, ROOT, SHIPPED

EXAMPLES = ROOT / "examples" / "ray"
sys.path.insert(0, str(EXAMPLES))
import serve_app  # noqa: E402
import translate_job  # noqa: E402
from local_cluster import free_port, local_cluster  # noqa: E402

CALL_TIMEOUT_S = 900
# A test that hangs (a scheduling deadlock) fails after this, and the cluster still stops.
pytestmark = pytest.mark.timeout(1200, method="signal")
# Where the figures seen (batch sizes) are written for the README, when set.
REPORT = os.environ.get("SEQBRIDGE_RAY_REPORT")


@pytest.fixture(scope="module")
def cluster():
    """Two nodes, two CPU slots each (one for an actor, one for Ray Data's read tasks),
    stopped at the end of the module (also on failure or timeout)."""
    # Actors and replicas import translate_job and serve_app from the job's working_dir.
    with local_cluster(nodes=2, cpus_per_node=2, runtime_env={"working_dir": str(EXAMPLES)}) as address:
        yield address


def report(key: str, value) -> None:
    if not REPORT:
        return
    path = Path(REPORT)
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=1))


def test_data_job_equals_cli(cluster, tmp_path, cli_dates):
    # Blank lines included: they must come back blank and in place.
    lines = DATES.read_text(encoding="utf-8").splitlines()
    lines = lines[:10] + [""] + lines[10:]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    want = cli_dates[:10] + [""] + cli_dates[10:]
    got, nodes = translate_job.translate_file(str(src), str(SHIPPED), batch_size=4, concurrency=2, num_cpus=1)
    assert got == want
    # One actor per node: both nodes translated.
    assert len(nodes) == 2, nodes


def test_serve_batches_concurrent_requests(cluster, dates, cli_dates):
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port}, proxy_location="HeadOnly")
    serve.run(
        serve_app.build_app(str(SHIPPED), max_batch_size=8, batch_wait_timeout_s=0.5),
        name="seqbridge",
        route_prefix="/translate",
    )
    url = f"http://127.0.0.1:{port}/translate"

    def post(text: str) -> str:
        req = urllib.request.Request(url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=CALL_TIMEOUT_S) as r:
            return json.loads(r.read())["translation"]

    n = 24
    texts = [dates[i % len(dates)] for i in range(n)]
    with ThreadPoolExecutor(max_workers=n) as pool:
        got = list(pool.map(post, texts))
    assert got == [cli_dates[i % len(dates)] for i in range(n)]

    handle = serve.get_deployment_handle("Translator", app_name="seqbridge")
    sizes = handle.batch_sizes.remote().result(timeout_s=CALL_TIMEOUT_S)
    report("serve_batch_sizes", sizes)
    assert sum(sizes) == n
    assert max(sizes) > 1, f"no request was batched with another: {sizes}"

    # A malformed request gets a 400 and its reason, and the replica keeps serving.
    bad = urllib.request.Request(url, data=b'{"txt": 1}', headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(bad, timeout=CALL_TIMEOUT_S)
    assert e.value.code == 400
    assert post(dates[0]) == cli_dates[0]
