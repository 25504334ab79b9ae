"""Starting and stopping the monitor beside a running serving stack.

The monitor (monitoring/service.py) is its own process on a free loopback port. Attached to the stack
(`serving.stack.attach`), nginx routes the feedback and monitor paths to it from its control listener, Prometheus scrapes its
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
from serving import credentials, processes, stack

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
        stack.ledger(paths),
    )
    try:
        stack.attach(
            paths,
            NAME,
            port,
            pid,
            [monitoring_config.FEEDBACK_PATH, monitoring_config.MONITOR_PATH],
            [str(p) for p in RULE_FILES],
        )
    except BaseException:  # not attached, so no `serve stop` would find it by the state
        processes.stop(pid)
        raise
    return {"port": port, "pid": pid}


def stop(settings: folders.Settings) -> bool:
    """Stops the monitor; False when none was attached."""
    return stack.detach(stack.StackPaths.of(settings), NAME) is not None


def control_access(settings: folders.Settings, role: str) -> tuple[str, dict[str, str]]:
    """(the stack's control URL, the header of `role`'s token) for a client on this machine."""
    paths = stack.StackPaths.of(settings)
    state = stack.read_state(paths)
    if state is None:
        raise stack.StackError("the serving stack is not running: `make serve` starts it")
    try:
        return f"http://127.0.0.1:{state['control_port']}", credentials.bearer(paths.root, role)
    except credentials.CredentialError as error:
        raise stack.StackError(str(error)) from None


def figures(settings: folders.Settings, timeout: float = 5) -> dict:
    """The monitor's latest figures, through the stack's control listener, with the admin token."""
    url, headers = control_access(settings, credentials.ADMIN)
    request = urllib.request.Request(f"{url}{monitoring_config.MONITOR_PATH}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise stack.StackError(f"the monitor answered {error.code}: {error.read()[:200]!r}") from error
