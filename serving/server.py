"""The model server's process: TF Serving's REST API for the pushed model (serving/rest.py) on uvicorn.

    python -m serving.server --serving-dir outputs/serving_model --port 8501     # follows production
    python -m serving.server --serving-dir outputs/serving_model --version 3 --label stable \
        --request-log outputs/request_log --port 8502                                 # version 3, pinned

The local stack (serving/stack.py) starts one per live version, pinned, on a free port.
"""

import argparse
from pathlib import Path

from serving.model import LATEST
from serving.rest import ServerSettings, create_app


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__.split("\n\n")[0])
    parser.add_argument("--serving-dir", required=True, help="The Pusher's serving directory.")
    parser.add_argument("--version", default=LATEST, help=f"A version to serve, or '{LATEST}' (default).")
    parser.add_argument(
        "--label", action="append", default=[], help="A label this server answers for (repeatable)."
    )
    parser.add_argument("--request-log", help="Folder for the request log (default: none).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    settings = ServerSettings(
        serving_dir=Path(args.serving_dir),
        version=args.version,
        labels=tuple(args.label),
        request_log_dir=Path(args.request_log) if args.request_log else None,
    )
    # httptools and uvloop rather than uvicorn's pure-Python defaults (h11, asyncio's loop): about a
    # millisecond less per request, measured by `make bench-serve` (docs/serving.md).
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
