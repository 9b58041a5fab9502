"""Threads: one Model shared by several Python threads, and the GIL released while the GPU
works."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor


def test_threads_share_one_model(shipped, dates, cli_dates):
    def job(i: int) -> tuple[int, list[str]]:
        lo = (i * 5) % len(dates)
        return lo, shipped.translate(dates[lo : lo + 5])

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(job, range(12)))
    for lo, got in results:
        assert got == cli_dates[lo : lo + 5]


def test_streams_on_threads(shipped, dates):
    want = {t: shipped.generate([t]).sequences[0][0][1:] for t in dates[:4]}
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = dict(zip(want, pool.map(lambda t: list(shipped.stream(t)), want)))
    assert got == want


def test_other_threads_run_while_the_gpu_works(shipped, dates):
    """A pure-Python thread counts while another thread translates. Were the GIL held for
    the call, the counter could not move until the call returned."""
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        result: dict[str, object] = {}
        worker = threading.Thread(target=lambda: result.update(before=ticks, out=shipped.translate(dates * 4), after=ticks))
        worker.start()
        worker.join(timeout=900)
        assert not worker.is_alive()
    finally:
        stop.set()
        counter.join()
    assert len(result["out"]) == 4 * len(dates)
    # `before` and `after` are read by the translating thread right around the call.
    assert result["after"] - result["before"] > 1000, result
