"""``labkit serve``: the capstone models behind a REST API (see :mod:`labkit.serve.app`);
``labkit demo``: the browser demo (Streamlit, :mod:`labkit.serve.demo_app`)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
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


def _demo(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("streamlit") is None:
        raise UsageError("labkit demo needs streamlit: pip install -e '.[serve]'")
    if not Path(args.config).is_file():
        raise UsageError(f"config not found: {args.config}")
    from labkit.serve.demo_app import CONFIG_ENV

    script = Path(__file__).with_name("demo_app.py")
    url = f"http://{args.host}:{args.port}"
    print(json.dumps({"url": url}) if args.json else f"demo on {url}", flush=True)
    cmd = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
           "--server.address", args.host, "--server.port", str(args.port), "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    return subprocess.call(cmd, env={**os.environ, CONFIG_ENV: str(Path(args.config).resolve())})


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the capstone models over HTTP (FastAPI + uvicorn)",
                       description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="pipeline config (default: configs/capstone.yaml)")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    add_json_flag(p)
    p.set_defaults(func=_serve)

    d = sub.add_parser("demo", help="the browser demo of the capstone pipeline (Streamlit)",
                       description="Serve the Streamlit demo of the capstone pipeline.")
    d.add_argument("--config", default=str(DEFAULT_CONFIG), help="pipeline config (default: configs/capstone.yaml)")
    d.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    d.add_argument("--port", type=int, default=8501, help="TCP port (default 8501)")
    add_json_flag(d)
    d.set_defaults(func=_demo)
