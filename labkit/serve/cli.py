"""``labkit serve``: the capstone models behind a REST API (see :mod:`labkit.serve.app`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labkit.cli import UsageError, add_json_flag
from labkit.pipeline.cli import DEFAULT_CONFIG


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError as exc:
        raise UsageError("labkit serve needs the 'serve' extra: pip install -e '.[serve]'") from exc
    from labkit.serve.app import create_app

    if not Path(args.config).is_file():
        raise UsageError(f"config not found: {args.config}")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in [0, 65535], got {args.port}")
    app = create_app(args.config)
    url = f"http://{args.host}:{args.port}"
    print(json.dumps({"url": url, "docs": url + "/docs"}) if args.json else f"serving on {url} (docs: {url}/docs)",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the capstone models over HTTP (FastAPI + uvicorn)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="pipeline config (default: configs/capstone.yaml)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    add_json_flag(p)
    p.set_defaults(func=_serve)
