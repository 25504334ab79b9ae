"""Starting and stopping the monitor beside a running serving stack.

The monitor (monitoring/service.py) is its own process on a free loopback port. Attached to the stack
(`serving.stack.attach`), nginx routes the feedback and monitor paths to it, Prometheus scrapes its
/metrics and evaluates monitoring/prometheus/'s rules, and `make serve-stop` stops it with the rest.
"""

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from config import folders
from config import monitoring as monitoring_config
from config import serving as serving_config
from serving import processes, stack

NAME = "monitor"
RULE_FILES = sorted((Path(__file__).parent / "prometheus").glob("*_rules.yml"))


def start(
    settings: folders.Settings, refresh_seconds: float = monitoring_config.MONITOR_REFRESH_SECONDS
) -> dict:
    """Starts the monitor for the stack of `settings` and attaches it; returns its slot. The running one
    if it is attached and alive."""
    paths = stack.StackPaths.of(settings)
    state = stack.read_state(paths)
    if state is None:
        raise stack.StackError("the serving stack is not running: `make serve` starts it")
    current = (state.get("services") or {}).get(NAME)
    if current and processes.alive(current.get("pid")):
        return current
    port = processes.free_port()
    command = [sys.executable, "-m", "monitoring.service", "--output-dir", str(settings.output_dir),
               "--port", str(port), "--refresh-seconds", str(refresh_seconds)]  # fmt: skip
    pid = processes.spawn(
        command,
        paths.run / f"monitor-{port}.log",
        "the monitor",
        f"http://127.0.0.1:{port}/ready",
        serving_config.SERVING_START_SECONDS,
    )
    stack.attach(
        paths,
        NAME,
        port,
        pid,
        [monitoring_config.FEEDBACK_PATH, monitoring_config.MONITOR_PATH],
        [str(p) for p in RULE_FILES],
    )
    return {"port": port, "pid": pid}


def stop(settings: folders.Settings) -> bool:
    """Stops the monitor; False when none was attached."""
    return stack.detach(stack.StackPaths.of(settings), NAME) is not None


def figures(base_url: str, timeout: float = 5) -> dict:
    """The monitor's latest figures, through the stack's front door."""
    try:
        with urllib.request.urlopen(
            f"{base_url}{monitoring_config.MONITOR_PATH}", timeout=timeout
        ) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise stack.StackError(f"the monitor answered {error.code}: {error.read()[:200]!r}") from error
