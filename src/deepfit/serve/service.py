"""The FastAPI app of `deepfit serve` (FastAPI: routing, pydantic validation, OpenAPI at /docs).

    POST /predict   {"model": id?, "records": [{…}, …]} → {"model", "predictions", "probabilities"}
                    records: the training columns (tables, a table's rows as sequences), or
                    {"image": base64 file} (images), or {"values": nested numbers} (arrays)
    GET  /health    {"status": "ok", "models": [ids]}
    GET  /models    per model: task, classes, input schema, test metrics, the weights' SHA-256

Every bad request is a 4xx naming what is wrong, never a 500: a body over the limit 413 (its
Content-Length, or the bytes counted as they stream, before anything is parsed); JSON that is
not the schema, more records than allowed, a missing column, a value of the wrong type or an
undecodable image 422; an unknown model 404. A DeepfitError of the Predictor is a 422.
"""

# no `from __future__ import annotations`: FastAPI reads the request model from the annotation

from pathlib import Path
from typing import Any

from deepfit.core.extras import import_extra
from deepfit.core.io import read_json
from deepfit.core.notes import Notes
from deepfit.errors import DeepfitError, PredictInputError, SettingsError
from deepfit.evaluation.full_metrics import predict_codes
from deepfit.lifecycle.directory import load
from deepfit.serve.batcher import MicroBatcher


class ServedModel:
    """One run, loaded once: its Predictor, what GET /models says of it, its batcher."""

    def __init__(self, run_dir: Path, batch_rows: int, wait_ms: float) -> None:
        self.run_dir, self.id = run_dir, run_dir.name
        self.predictor = load(run_dir)  # checksum verified
        self.batcher = MicroBatcher(self.predictor.model, batch_rows, wait_ms)
        meta = read_json(run_dir / "model.json")
        metrics = read_json(run_dir / "metrics.json") if (run_dir / "metrics.json").exists() else {}
        arch = self.predictor.architecture
        self.info = {"id": self.id, "run": str(run_dir), "task": self.predictor.task,
                     "model": arch["name"], "settings": arch["settings"],
                     "quantization": arch.get("quantization"),
                     "classes": [_plain(c) for c in self.predictor.classes]
                     if self.predictor.task == "classification" else None,
                     "threshold": self.predictor.threshold,
                     "input_schema": self.predictor.modality.request_schema(self.predictor.preprocessor),
                     "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
                     "weights_sha256": meta["weights"].get("sha256")}

    async def predict(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        p = self.predictor
        raw = p.modality.request_input(p.preprocessor, records)
        if p.series is not None:  # a time series: forecast from its rows (no batching)
            frame = p.forecast(raw)
            return {"model": self.id, "predictions": frame.to_dict(orient="records"), "probabilities": None}
        features = p.features(raw, Notes(live=False))
        out = await self.batcher.outputs(features)
        return {"model": self.id, **self._decode(out)}

    def _decode(self, out: Any) -> dict[str, Any]:
        """Outputs → labels and probabilities, as Predictor.predict / predict_proba do."""
        import torch

        p = self.predictor
        if p.task == "classification":
            proba = torch.softmax(out.double(), dim=1)
            labels = p.target.inverse(predict_codes(proba, p.threshold).numpy())
            names = [str(c) for c in p.classes]
            return {"predictions": [_plain(v) for v in labels],
                    "probabilities": [dict(zip(names, row)) for row in proba.tolist()]}
        if p.anomaly is not None:  # an autoencoder's output is the row's score: flag it as predict does
            scores = out.reshape(-1).double().numpy()
            return {"predictions": [{"anomaly_score": float(v), "is_anomaly": bool(v >= p.anomaly["threshold"])}
                                    for v in scores], "probabilities": None}
        values = p.target.inverse(out.double().numpy() if p.target.n_targets > 1
                                  else out.reshape(-1).double().numpy())
        return {"predictions": values.tolist(), "probabilities": None}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def build_app(runs: list[str | Path], *, max_rows: int, max_body_mb: float, batch_rows: int,
              batch_wait_ms: float) -> Any:
    """The app (see the module's docstring and deepfit.serve.app)."""
    fastapi = import_extra("fastapi", "serve", "deepfit serve")
    from deepfit.serve.limits import BodyLimit, request_model

    if not runs:
        raise SettingsError("serve needs at least one run directory")
    if max_rows < 1 or max_body_mb <= 0:
        raise SettingsError(f"max_rows must be >= 1 and max_body_mb > 0, not {max_rows} and {max_body_mb}")
    models: dict[str, ServedModel] = {}
    for run in runs:
        served = ServedModel(Path(run), batch_rows, batch_wait_ms)
        if served.id in models:
            raise SettingsError(f"two runs are named {served.id!r}; their names are the model ids")
        models[served.id] = served
    default = next(iter(models))
    Request = request_model(max_rows)
    app = fastapi.FastAPI(title="deepfit serve", version="1",
                          description="Predictions of deepfit runs: " + ", ".join(models))
    app.add_middleware(BodyLimit, max_bytes=int(max_body_mb * 2**20))
    JSONResponse = fastapi.responses.JSONResponse

    @app.exception_handler(fastapi.exceptions.RequestValidationError)
    async def invalid(request: Any, exc: Any) -> Any:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        field = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
        return JSONResponse({"error": f"{field}: {first.get('msg')}", "field": field,
                             "detail": [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errors]},
                            status_code=422)

    @app.exception_handler(DeepfitError)
    async def user_error(request: Any, exc: DeepfitError) -> Any:
        return JSONResponse({"error": str(exc)}, status_code=422)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "models": list(models)}

    @app.get("/models")
    async def list_models() -> dict[str, Any]:
        return {"models": [m.info for m in models.values()], "default": default}

    @app.post("/predict")
    async def predict(body: Request) -> Any:  # type: ignore[valid-type]
        model_id = body.model or default
        if model_id not in models:
            return JSONResponse({"error": f"model: no model {model_id!r}; served: {', '.join(models)}",
                                 "field": "model"}, status_code=404)
        try:
            return await models[model_id].predict(body.records)
        except DeepfitError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        except (ValueError, TypeError) as exc:  # a value the preprocessing cannot take
            return JSONResponse({"error": f"records: {str(PredictInputError(exc))[:300]}"}, status_code=422)

    app.state.models = models
    return app
