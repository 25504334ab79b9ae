"""The monitor: a process beside the model servers that takes feedback and measures live quality.

`python -m monitoring.service --output-dir DIR --port N` serves the monitor's HTTP API
(monitoring/http_api.py) on loopback; `taxi-pipeline monitor start` (monitoring/control.py) starts it and
attaches it to the stack. Process start-up only: what it computes is monitoring/refresh.py's.
"""

import argparse

from config import folders
from config import monitoring as monitoring_config
from monitoring import http_api


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m monitoring.service", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--refresh-seconds", type=float, default=monitoring_config.MONITOR_REFRESH_SECONDS)
    args = parser.parse_args(argv)
    settings = folders.Settings.resolve(args.output_dir)
    app = http_api.create_app(settings, refresh_seconds=args.refresh_seconds)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
