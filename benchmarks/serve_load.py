"""Load on `deepfit serve`: a breast_cancer run behind a real uvicorn process on a loopback port,
CLIENTS threads each sending REQUESTS requests of ROWS records; per repeat the latency p50/p95
per request and the requests per second, then the median and range over the repeats.

    PYTHONPATH=src python benchmarks/serve_load.py [--clients 8] [--requests 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from sklearn.datasets import load_breast_cancer

import deepfit


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--rows", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="serve-load-"))
    deepfit.train("breast_cancer", out=root / "bc", epochs=2, progress=False, report=False)
    rows = load_breast_cancer(as_frame=True).data.iloc[: args.rows].to_dict(orient="records")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(Path(deepfit.__file__).parents[1])}
    server = subprocess.Popen([sys.executable, "-m", "deepfit", "serve", str(root / "bc"), "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)

        def client(_: int) -> list[float]:
            seconds = []
            with httpx.Client(base_url=url, timeout=30) as c:
                c.post("/predict", json={"records": rows})  # warm-up: the connection
                for _ in range(args.requests):
                    start = time.perf_counter()
                    r = c.post("/predict", json={"records": rows})
                    seconds.append(time.perf_counter() - start)
                    assert r.status_code == 200, r.text
            return seconds

        results = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                seconds = [s for part in pool.map(client, range(args.clients)) for s in part]
            wall = time.perf_counter() - start
            ms = np.asarray(seconds) * 1e3
            results.append((np.percentile(ms, 50), np.percentile(ms, 95), len(seconds) / wall))
            print(f"repeat: p50 {results[-1][0]:.1f} ms, p95 {results[-1][1]:.1f} ms, {results[-1][2]:.0f} requests/s")
        for i, name in enumerate(("p50 ms", "p95 ms", "requests/s")):
            values = [r[i] for r in results]
            print(f"{name}: median {np.median(values):.1f} (range {min(values):.1f}-{max(values):.1f})")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
