"""deepfit serve: in-process through FastAPI's TestClient (predictions equal the Predictor's,
/models, every malformed request answered with its 4xx and the server still answering) and once
as a real uvicorn process on a loopback port under concurrent clients."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import deepfit
import deepfit.serve
from deepfit.core.io import read_json

fastapi_testclient = pytest.importorskip("fastapi.testclient", reason="the serve extra is not installed")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    deepfit.train("breast_cancer", out=root / "bc", epochs=2, progress=False, report=False)
    deepfit.train("digits", out=root / "digits_img", modality="image", model="cnn", widths=[4, 4, 4],
                  hidden=8, epochs=1, progress=False, report=False)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 16, 2)).astype(np.float32)
    y = (X[:, :, 0].mean(axis=1) > 0).astype(int)
    deepfit.train(X, y=y, out=root / "seq", model="cnn1d", width=8, depth=1, epochs=1,
                  progress=False, report=False)
    return root


@pytest.fixture(scope="module")
def client(runs):
    app = deepfit.serve.app([runs / "bc", runs / "digits_img", runs / "seq"], max_rows=50, max_body_mb=0.5)
    with fastapi_testclient.TestClient(app) as c:
        yield c


def _bc_rows(n=20):
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).data.iloc[:n]


def _png(image: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_tabular_predictions_are_the_predictors(client, runs):
    X = _bc_rows()
    reply = client.post("/predict", json={"model": "bc", "records": X.to_dict(orient="records")})
    assert reply.status_code == 200
    body, predictor = reply.json(), deepfit.load(runs / "bc")
    assert body["model"] == "bc"
    assert body["predictions"] == list(predictor.predict(X))
    proba = predictor.predict_proba(X)
    got = np.array([[row[str(c)] for c in predictor.classes] for row in body["probabilities"]])
    np.testing.assert_allclose(got, proba, rtol=1e-6, atol=1e-7)


def test_image_and_sequence_predictions_are_the_predictors(client, runs):
    from deepfit.modalities.image.arrays import digits_images

    images = digits_images()[:12]  # uint8 [N, 1, 8, 8]; PNG is lossless
    reply = client.post("/predict", json={"model": "digits_img",
                                          "records": [{"image": _png(im[0])} for im in images]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == [int(v) for v in deepfit.load(runs / "digits_img").predict(images)]
    X = np.random.default_rng(1).normal(size=(7, 16, 2)).astype(np.float32)
    reply = client.post("/predict", json={"model": "seq", "records": [{"values": x.tolist()} for x in X]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["predictions"] == [int(v) for v in deepfit.load(runs / "seq").predict(X)]


def test_health_and_models(client, runs):
    assert client.get("/health").json() == {"status": "ok", "models": ["bc", "digits_img", "seq"]}
    models = {m["id"]: m for m in client.get("/models").json()["models"]}
    bc = models["bc"]
    assert bc["weights_sha256"] == read_json(runs / "bc" / "model.json")["weights"]["sha256"]
    assert bc["classes"] == ["malignant", "benign"] or set(bc["classes"]) == {"malignant", "benign"}
    assert bc["input_schema"]["mean radius"] == "number or null" and len(bc["input_schema"]) == 30
    assert bc["metrics"]["accuracy"] == pytest.approx(read_json(runs / "bc" / "metrics.json")["accuracy"])
    assert "image" in models["digits_img"]["input_schema"]
    assert client.get("/docs").status_code == 200 and "/predict" in client.get("/openapi.json").json()["paths"]


def _matrix():
    good = _bc_rows(1).to_dict(orient="records")[0]
    missing = {k: v for k, v in good.items() if k != "mean texture"}
    return [
        ("missing column", {"model": "bc", "records": [missing]}, 422, "mean texture"),
        ("wrong type", {"model": "bc", "records": [{**good, "mean area": "big"}]}, 422, "mean area"),
        ("too many rows", {"model": "bc", "records": [good] * 51}, 422, "records"),
        ("no records", {"model": "bc", "records": []}, 422, "records"),
        ("records not a list", {"model": "bc", "records": "all"}, 422, "records"),
        ("unknown model", {"model": "nope", "records": [good]}, 404, "model"),
        ("undecodable image", {"model": "digits_img", "records": [{"image": "bm90IGFuIGltYWdl"}]}, 422, "records[0].image"),
        ("not base64", {"model": "digits_img", "records": [{"image": "%%%"}]}, 422, "records[0].image"),
        ("sequence of the wrong shape", {"model": "seq", "records": [{"values": [[1.0, 2.0]]}]}, 422, "records[0].values"),
        ("sequence of text", {"model": "seq", "records": [{"values": "abc"}]}, 422, "records[0].values"),
    ]


@pytest.mark.parametrize("name, body, status, field", _matrix(), ids=[m[0] for m in _matrix()])
def test_malformed_request_gets_its_4xx_and_the_server_answers_after(client, name, body, status, field):
    reply = client.post("/predict", json=body)
    assert reply.status_code == status, reply.text
    assert field in reply.json()["error"]
    good = client.post("/predict", json={"records": _bc_rows(2).to_dict(orient="records")})
    assert good.status_code == 200


def test_oversized_and_broken_bodies(client):
    big = b'{"records": [' + b'{"a": 1},' * 80_000 + b'{"a": 1}]}'  # > 0.5 MiB
    assert client.post("/predict", content=big, headers={"content-type": "application/json"}).status_code == 413

    def streamed():  # no Content-Length: the bytes are counted as they come
        for _ in range(80):
            yield b" " * 10_000
    reply = client.post("/predict", content=streamed(), headers={"content-type": "application/json"})
    assert reply.status_code == 413 and "body" in reply.json()["error"]
    assert client.post("/predict", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    assert client.get("/health").status_code == 200


def test_concurrent_requests_share_forwards(runs):
    httpx = pytest.importorskip("httpx")
    app = deepfit.serve.app([runs / "bc"], batch_wait_ms=20)
    rows = _bc_rows(3).to_dict(orient="records")

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            replies = await asyncio.gather(*(c.post("/predict", json={"records": rows}) for _ in range(32)))
        return replies

    replies = asyncio.run(main())
    assert all(r.status_code == 200 for r in replies)
    assert len({tuple(r.json()["predictions"]) for r in replies}) == 1
    batcher = app.state.models["bc"].batcher
    assert batcher.requests == 32 and batcher.forwards < 32  # batched, not one forward per request


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_real_uvicorn_under_eight_concurrent_clients(runs):
    httpx = pytest.importorskip("httpx")
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(Path(deepfit.__file__).parents[1])}
    server = subprocess.Popen([sys.executable, "-m", "deepfit", "serve", str(runs / "bc"), "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail(f"the server did not start: {server.stdout.read1().decode()[-500:]}")
        rows = _bc_rows(4).to_dict(orient="records")
        expected = list(deepfit.load(runs / "bc").predict(_bc_rows(4)))

        def client(_):
            errors = 0
            with httpx.Client(base_url=url, timeout=30) as c:
                for i in range(200):
                    if i % 50 == 7:  # a bad request among the good ones
                        errors += c.post("/predict", json={"records": [{"x": 1}]}).status_code != 422
                        continue
                    r = c.post("/predict", json={"records": rows})
                    errors += r.status_code != 200 or r.json()["predictions"] != expected
            return errors

        with ThreadPoolExecutor(8) as pool:
            assert sum(pool.map(client, range(8))) == 0
        assert server.poll() is None  # still serving
    finally:
        server.terminate()
        server.wait(timeout=10)
