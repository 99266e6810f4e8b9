"""`deepfit serve RUN [RUN...]`: the runs behind an HTTP JSON service (FastAPI on uvicorn;
deepfit/serve/). Binds to loopback unless --host says otherwise."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

NAMES = ("serve",)
RUNS_VARIABLE = "DEEPFIT_SERVE"  # the app's settings, for --workers (each worker builds it)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve runs over HTTP: POST /predict, GET /health, /models, /docs",
                       description="Serve trained runs as an HTTP JSON service (FastAPI on uvicorn). "
                                   "POST /predict {\"model\": ID, \"records\": [...]}; GET /health, "
                                   "/models; OpenAPI docs at /docs.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (the model ids are their names)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="worker processes, each loading the runs (default 1)")
    p.add_argument("--max-body-mb", type=float, default=10.0, help="request body limit in MiB (default 10; over it: 413)")
    p.add_argument("--max-rows", type=int, default=1000, help="records per request (default 1000)")
    p.add_argument("--batch-rows", type=int, default=256, help="rows batched into one forward (default 256)")
    p.add_argument("--batch-wait-ms", type=float, default=2.0,
                   help="how long a request waits for others to share its forward (default 2 ms)")


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"runs": list(args.runs), "max_rows": args.max_rows, "max_body_mb": args.max_body_mb,
            "batch_rows": args.batch_rows, "batch_wait_ms": args.batch_wait_ms}


def from_environment() -> Any:
    """The app from $DEEPFIT_SERVE (uvicorn's factory, one per worker process)."""
    from deepfit.serve import app

    given = json.loads(os.environ[RUNS_VARIABLE])
    return app(given.pop("runs"), **given)


def run(args: argparse.Namespace, console: Any) -> int:
    from deepfit.core.extras import import_extra
    from deepfit.errors import SettingsError
    from deepfit.serve import app

    uvicorn = import_extra("uvicorn", "serve", "deepfit serve")
    if args.workers < 1 or not 0 < args.port < 65536:
        raise SettingsError(f"--workers must be >= 1 and --port in 1-65535, not {args.workers} and {args.port}")
    given = settings(args)
    built = app(given["runs"], **{k: v for k, v in given.items() if k != "runs"})  # fails here, once
    ids = ", ".join(built.state.models)
    console.print(f"serving {ids} on http://{args.host}:{args.port} (docs at /docs)")
    if args.workers == 1:
        uvicorn.run(built, host=args.host, port=args.port, log_level="warning")
    else:
        os.environ[RUNS_VARIABLE] = json.dumps(given)
        uvicorn.run(f"{__name__}:from_environment", factory=True, host=args.host, port=args.port,
                    workers=args.workers, log_level="warning")
    return 0
