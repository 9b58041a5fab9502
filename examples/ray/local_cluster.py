"""A local Ray cluster for tests and measurements: a head node and more nodes, each started
with `ray start --block` on this machine in its own process group, so that stopping it ends
exactly the processes it started (never another Ray on the machine). Every wait is bounded.

    with local_cluster(nodes=2, cpus_per_node=1) as address:
        ray.init(address=address)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

import ray


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args: list[str], log: Path) -> subprocess.Popen:
    ray_bin = Path(sys.executable).with_name("ray")
    with open(log, "w") as out:
        return subprocess.Popen(
            [str(ray_bin), "start", "--block", "--disable-usage-stats", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0", NODEVICE_SELECT="1", RAY_AUTH_MODE="disabled"),
        )


def _stop(p: subprocess.Popen) -> None:
    """SIGTERM to the node's process group, SIGKILL to what is left after a minute."""
    for sig, wait in ((signal.SIGTERM, 60), (signal.SIGKILL, 30)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            p.poll()  # reap the leader, or it counts as alive
            try:
                os.killpg(p.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.5)


@contextlib.contextmanager
def local_cluster(
    nodes: int = 2, cpus_per_node: int = 1, start_timeout_s: float = 300, runtime_env: Optional[dict] = None
) -> Iterator[str]:
    """Starts the cluster, connects this process as its driver (with `runtime_env`, e.g. a
    working_dir holding the modules that actors are defined in), yields the head's address;
    disconnects and stops every node on exit, also after an error."""
    # Ray's socket paths must stay short (AF_UNIX limit): not under pytest's tmp_path.
    tmp = Path(tempfile.mkdtemp(prefix="sbray-"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    # Ray (2.60) replaces a loopback --node-ip-address with the machine's own address
    # (services.resolve_ip_for_localhost) and its servers listen on every interface: the
    # nodes talk over this machine's address, the driver connects through 127.0.0.1, and
    # keeping others out is the host firewall's job.
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus_per_node}", "--object-store-memory=150000000"]
    logs = [tmp / f"node{i}.log" for i in range(nodes)]
    procs = [_start(["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={tmp}", *common], logs[0])]
    deadline = time.monotonic() + start_timeout_s

    def check(i: int, what: str) -> None:
        if time.monotonic() > deadline or procs[i].poll() is not None:
            raise RuntimeError(f"{what}: {logs[i].read_text()[-2000:]}")

    # No token auth on either side: a ~/.ray/auth_token (left by a ray.init() that started its
    # own Ray) would otherwise turn it on for the nodes but not for this driver, or back.
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        while True:
            try:
                ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
                break
            except (ConnectionError, RuntimeError, TimeoutError):
                check(0, "the Ray head did not start")
                time.sleep(2)
        for i in range(1, nodes):
            procs.append(_start([f"--address={address}", *common], logs[i]))
        while sum(n["Alive"] for n in ray.nodes()) < nodes:
            for i in range(1, nodes):
                check(i, f"Ray node {i} did not join")
            time.sleep(2)
        yield address
    finally:
        try:
            from ray import serve

            serve.shutdown()
        except Exception:  # Serve was never started, or the cluster is already gone
            pass
        ray.shutdown()
        for p in reversed(procs):
            _stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
