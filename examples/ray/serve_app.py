"""Ray Serve deployment: seqbridge translation behind HTTP, with dynamic batching.

Concurrent requests that reach a replica within `batch_wait_timeout_s` of each other are
translated as one GPU batch (`@serve.batch`); each replica loads the model once. The
replica records the size of every batch it ran (`batch_sizes`), so a test or an operator can
see that batching happens.

    POST /  {"text": "Saturday, 28 November 2026"}  ->  {"translation": "2026-11-28"}

    cd examples/ray && serve run serve_app:app    # or serve.run(build_app(...)) from Python
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Optional

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse


@serve.deployment
class Translator:
    def __init__(
        self,
        model_dir: str,
        backend: Optional[str] = None,
        max_batch_size: int = 16,
        batch_wait_timeout_s: float = 0.05,
    ):
        import seqbridge  # imported on the replica, where the wheel is installed

        self.model = seqbridge.Model(model_dir, backend=backend)
        self.sizes: list[int] = []
        self.translate_batch.set_max_batch_size(max_batch_size)
        self.translate_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.05)
    async def translate_batch(self, texts: list[str]) -> list[str]:
        self.sizes.append(len(texts))
        # translate releases the GIL: in a worker thread it leaves the replica's event loop
        # free to accept the next batch's requests while the GPU works.
        return await asyncio.to_thread(self.model.translate, texts, batch_size=len(texts))

    async def __call__(self, request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            return JSONResponse({"error": 'expected a JSON object {"text": "..."}'}, status_code=400)
        return JSONResponse({"translation": await self.translate_batch(text)})

    def batch_sizes(self) -> list[int]:
        """The size of every batch this replica ran, in order."""
        return list(self.sizes)


# The shipped model of the checkout this file is in, unless SEQBRIDGE_MODEL names another
# directory (on every node, at the same path).
DEFAULT_MODEL = os.environ.get(
    "SEQBRIDGE_MODEL", str(Path(__file__).resolve().parents[2] / "assets" / "date-normalizer")
)


def build_app(
    model_dir: str = DEFAULT_MODEL,
    backend: Optional[str] = None,
    max_batch_size: int = 16,
    batch_wait_timeout_s: float = 0.05,
    num_replicas: int = 1,
    num_cpus: float = 1,
):
    # max_ongoing_requests (default 5) caps what a replica holds at once, hence the batch size.
    return Translator.options(
        num_replicas=num_replicas,
        ray_actor_options={"num_cpus": num_cpus},
        max_ongoing_requests=4 * max_batch_size,
    ).bind(
        model_dir, backend, max_batch_size, batch_wait_timeout_s
    )


app = build_app()
