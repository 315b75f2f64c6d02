"""Benchmark: latency of ``labkit serve`` over real HTTP on the loopback interface.

Starts the service (``--config``, default ``configs/capstone_tiny.yaml``) as a separate process
on ``127.0.0.1``, then sends one 320x240 PNG (frame 1 of the embedded test sequence seq07)
to ``--endpoint``: first ``--requests`` requests one at a time (the latency of one image), then
``--requests`` requests with ``--concurrency`` in flight (the server runs one inference at a
time, so this adds queueing). The peer, measured in the same run, is the same pipeline called
in-process on the same image (no HTTP, no decoding): the difference is the service's overhead.
Writes ``artifacts/bench_serve.json``: p50 / p95 / max in ms and the error count of each phase,
the in-process p50 / p95, the target (p95 <= 150 ms for one image, 0 errors) and the run manifest.

Run: ``.venv/bin/python benchmarks/serve.py [--requests 200 --concurrency 8 --endpoint /v1/detect]``
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

from labkit.artifacts import REPO_ROOT, artifacts_dir, write_json
from labkit.repro import run_manifest

TARGET_P95_MS = 150.0


def test_image() -> bytes:
    from labkit.data.synth import default_root

    frame = default_root() / "sequences" / "test" / "seq07" / "img1" / "000001.jpg"
    if frame.is_file():
        image = cv2.imread(str(frame))
    else:  # no embedded dataset: a seeded smooth random image of the same size
        rng = np.random.default_rng(0)
        image = cv2.GaussianBlur(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8), (0, 0), 3)
    assert image.shape == (240, 320, 3), image.shape
    return cv2.imencode(".png", image)[1].tobytes()


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = 1000.0 * np.asarray(seconds)
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)), "max_ms": float(ms.max()),
            "mean_ms": float(ms.mean())}


async def load(url: str, body: bytes, requests: int, concurrency: int) -> dict[str, object]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def one(client: httpx.AsyncClient) -> None:
        async with gate:
            start = time.perf_counter()
            try:
                status = (await client.post(url, content=body, headers={"content-type": "image/png"})).status_code
            except httpx.HTTPError:
                status = -1
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1

    limits = httpx.Limits(max_connections=concurrency)
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=120.0, limits=limits) as client:
        await asyncio.gather(*(one(client) for _ in range(requests)))
    wall = time.perf_counter() - start
    errors = sum(n for s, n in statuses.items() if s != 200)
    return {"requests": requests, "concurrency": concurrency, "errors": errors, "statuses": statuses,
            "wall_s": wall, "requests_per_s": requests / wall, **summary_ms(latencies)}


def in_process(config: Path, body: bytes, repeats: int) -> dict[str, float]:
    from labkit.pipeline.config import load_config
    from labkit.pipeline.loader import Frame
    from labkit.pipeline.run import Pipeline

    pipeline = Pipeline(load_config(config))
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    pipeline.process([Frame(1, 0.0, "bench", image)])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        pipeline.process([Frame(1, 0.0, "bench", image)], segment=False)
        times.append(time.perf_counter() - start)
    return summary_ms(times)


def main() -> None:
    from labkit.serve.process import ServerProcess

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO_ROOT / "configs" / "capstone_tiny.yaml")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--endpoint", default="/v1/detect", choices=["/v1/detect", "/v1/segment"])
    args = parser.parse_args()
    body = test_image()
    with ServerProcess(args.config, timeout_s=600) as server:
        url = server.url + args.endpoint
        asyncio.run(load(url, body, 5, 1))  # warm-up, not counted
        sequential = asyncio.run(load(url, body, args.requests, 1))
        concurrent = asyncio.run(load(url, body, args.requests, args.concurrency))
        health = httpx.get(server.url + "/healthz").json()
    peer = in_process(args.config, body, 50) if args.endpoint == "/v1/detect" else None
    result = {
        "endpoint": args.endpoint, "image": "320x240 PNG", "host": "127.0.0.1", "models": health["models"],
        "one_at_a_time": sequential, "concurrent": concurrent, "in_process_detect": peer,
        "target": {"p95_ms_one_image": TARGET_P95_MS, "errors": 0},
        "meets_target": sequential["p95_ms"] <= TARGET_P95_MS and sequential["errors"] == 0 and concurrent["errors"] == 0,
        "run": run_manifest(seed=None, config=vars(args) | {"config": str(args.config)}),
    }
    path = write_json(artifacts_dir() / "bench_serve.json", result)
    print(f"one at a time p50 {sequential['p50_ms']:.1f} ms, p95 {sequential['p95_ms']:.1f} ms; "
          f"{args.concurrency} concurrent p50 {concurrent['p50_ms']:.1f} ms, p95 {concurrent['p95_ms']:.1f} ms, "
          f"errors {sequential['errors'] + concurrent['errors']} -> {path}")


if __name__ == "__main__":
    main()
