"""Resolve 50 tags against a real registry whose every request costs 50 ms more than loopback.

The latency stands in for a remote registry. The baseline (max_workers=1) is measured in the
same run as the default, against the same registry and proxy, so the ratio compares like with
like. Run: python benchmarks/bench_resolve.py
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.registry import LoopbackProxy, push_image, start_registry
from tfbake.model.reference import parse_reference
from tfbake.resolve.registry import RegistryOptions, resolve_images

IMAGES = 50
LATENCY = 0.050
TARGET_SPEEDUP = 8.0


def timed_resolve(host: str, options: RegistryOptions) -> float:
    references = [parse_reference(f"{host}/bench/app:v{n}") for n in range(IMAGES)]
    started = time.perf_counter()
    resolved = resolve_images(references, "x86_64", options)
    elapsed = time.perf_counter() - started
    assert len(resolved) == IMAGES
    return elapsed


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        server = start_registry(Path(tmp) / "registry")
        proxy = LoopbackProxy(server.host, latency=LATENCY).start()
        try:
            for n in range(IMAGES):
                push_image(server, "bench/app", f"v{n}", content=str(n))
            config = Path(tmp) / "no-docker-config.json"
            default = RegistryOptions(docker_config=config)
            serial = RegistryOptions(docker_config=config, max_workers=1)
            timed_resolve(proxy.host, default)  # warm-up: imports, first connections
            baseline = timed_resolve(proxy.host, serial)
            requests_before = len(proxy.requests)
            concurrent = timed_resolve(proxy.host, default)
            requests = len(proxy.requests) - requests_before
            # Not the default; shows what the worker count, not the client, limits.
            wider = timed_resolve(proxy.host, RegistryOptions(docker_config=config, max_workers=16))
        finally:
            proxy.stop()
            server.stop()
    workers = default.max_workers
    ceiling = IMAGES / math.ceil(IMAGES / workers)
    speedup = baseline / concurrent
    print(f"{IMAGES} tags, {LATENCY * 1000:.0f} ms added per request, {requests} requests per run")
    print(f"max_workers=1 (baseline): {baseline:.3f} s")
    print(f"max_workers={workers} (default): {concurrent:.3f} s")
    print(f"speed-up: {speedup:.2f}x (ideal for {workers} workers: {ceiling:.2f}x)")
    print(f"max_workers=16 (for comparison): {wider:.3f} s, {baseline / wider:.2f}x")
    verdict = "met" if speedup >= TARGET_SPEEDUP else "not met"
    print(f"target >= {TARGET_SPEEDUP:.0f}x: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
