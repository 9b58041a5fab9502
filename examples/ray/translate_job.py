"""Ray Data batch job: translate a file of sentences, one a line, with seqbridge.

Each actor of the pool loads the model once (weights go to its GPU once) and translates
batches of `batch_size` lines; `concurrency` actors run side by side, on one node or spread
over a cluster. The output has one line per input line, in input order (a blank line gives
a blank line), as `seqbridge translate --input FILE` writes it.

    python examples/ray/translate_job.py --input assets/samples/dates.txt --output out.txt \\
        --model assets/date-normalizer --batch-size 16 --concurrency 2 [--address auto]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Optional

import numpy as np
import ray


class Translator:
    """A Ray Data actor: the model is loaded in __init__, once per actor."""

    def __init__(self, model_dir: str, backend: Optional[str] = None, num_beams: Optional[int] = None):
        import seqbridge  # imported on the worker, where the wheel is installed

        self.model = seqbridge.Model(model_dir, backend=backend)
        self.num_beams = num_beams

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        # One GPU batch per Ray batch: Ray Data already cut the input to batch_size lines.
        out = self.model.translate(texts, batch_size=max(len(texts), 1), num_beams=self.num_beams)
        node = ray.get_runtime_context().get_node_id()
        return {"translation": np.array(out, dtype=object), "node": np.array([node] * len(out), dtype=object)}


def translate_file(
    input_path: str,
    model_dir: str,
    *,
    batch_size: int = 64,
    concurrency: int = 1,
    num_cpus: float = 1,
    backend: Optional[str] = None,
    num_beams: Optional[int] = None,
    spread: bool = True,
) -> tuple[list[str], set[str]]:
    """The translations of every line of `input_path`, in order, and the ids of the nodes
    whose actors translated them (ray.init() done by the caller). With `spread`, actors go
    to different nodes where they can (one GPU each), else where Ray packs them."""
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    ds = ray.data.read_text(str(Path(input_path).resolve()), drop_empty_lines=False)
    ds = ds.map_batches(
        Translator,
        fn_constructor_kwargs={"model_dir": model_dir, "backend": backend, "num_beams": num_beams},
        batch_size=batch_size,
        concurrency=concurrency,
        num_cpus=num_cpus,
        batch_format="numpy",
        # A remote arg of the actors (deprecated by Ray 2.60, still honoured until 2.64).
        scheduling_strategy="SPREAD" if spread else "DEFAULT",
    )
    rows = list(ds.iter_rows())
    return [str(r["translation"]) for r in rows], {str(r["node"]) for r in rows}


def main(argv: Optional[list[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="text file, one sentence a line")
    p.add_argument("--output", required=True)
    p.add_argument("--model", default="assets/date-normalizer", help="model directory (on every node)")
    p.add_argument("--batch-size", type=int, default=64, help="lines per actor call (one GPU batch)")
    p.add_argument("--concurrency", type=int, default=1, help="actors, each with its own model")
    p.add_argument("--num-cpus", type=float, default=1, help="CPUs reserved per actor")
    p.add_argument("--backend", default=None, help="vulkan, gl, metal, dx12 (default: best)")
    p.add_argument("--num-beams", type=int, default=None)
    p.add_argument("--address", default=None, help="Ray cluster address (default: a local Ray)")
    a = p.parse_args(argv)
    ray.init(address=a.address)
    t0 = time.perf_counter()
    lines, nodes = translate_file(
        a.input,
        # Actors run in other directories (and on other nodes): an absolute path.
        str(Path(a.model).resolve()),
        batch_size=a.batch_size,
        concurrency=a.concurrency,
        num_cpus=a.num_cpus,
        backend=a.backend,
        num_beams=a.num_beams,
    )
    secs = time.perf_counter() - t0
    with open(a.output, "w", encoding="utf-8") as f:
        f.writelines(line + "\n" for line in lines)
    print(f"translated {len(lines)} lines in {secs:.2f} s ({len(lines) / secs:.1f} lines/s) with {a.concurrency} actor(s) on {len(nodes)} node(s)")




if __name__ == "__main__":
    main()
