"""The local serving stack and the one front end that changes it (`taxi-pipeline serve ...`).

Processes, all on 127.0.0.1: one model server per live version (serving/model_server.py), nginx in front
(serving/traffic.py), Prometheus scraping every server, and, during an automatic canary, the analysis
(serving/analysis.py). One state file, `outputs/serving/state.json`, says what is live: the stable
version, the candidate, the mode and the canary share, with each process's pid and port. Every command
holds `state.lock` while it changes anything, so the analysis and a person cannot interleave.

A rollback, from any mode, puts all traffic back on stable with one nginx reload and records the
rolled-back version in the registry (registry/versions.py), so the pipeline never pushes it again.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from config import folders
from config import serving as serving_config
from registry import versions
from serving import prometheus, request_log, traffic

STATE_FILE, LOCK_FILE = "state.json", "state.lock"


class StackError(Exception):
    """What the stack cannot do, and why: the message is for the person at the command line."""


@dataclasses.dataclass(frozen=True)
class StackPaths:
    serving_dir: Path  # the Pusher's
    root: Path  # outputs/serving: state, nginx and Prometheus configuration, logs
    request_log: Path

    @classmethod
    def of(cls, settings: folders.Settings) -> "StackPaths":
        return cls(settings.serving_model_dir, settings.serving_stack_dir, settings.request_log_dir)

    @property
    def run(self) -> Path:
        return self.root / "run"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# --- state ----------------------------------------------------------------------------------------


def read_state(paths: StackPaths) -> dict | None:
    path = paths.root / STATE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _write_state(paths: StackPaths, state: dict) -> None:
    path = paths.root / STATE_FILE
    temporary = path.with_name(f".{STATE_FILE}.tmp")
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    temporary.replace(path)


@contextlib.contextmanager
def _locked(paths: StackPaths):
    paths.root.mkdir(parents=True, exist_ok=True)
    with (paths.root / LOCK_FILE).open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _traffic(state: dict) -> traffic.Traffic:
    def backend(slot):
        return traffic.Backend(slot["version"], slot["port"]) if slot else None

    return traffic.Traffic(
        mode=state["mode"],
        stable=backend(state["stable"]),
        candidate=backend(state.get("candidate")),
        canary_percent=state.get("canary_percent", 0.0),
        generation=state.get("generation", 0),
        services=tuple(
            traffic.Service(name, slot["port"], tuple(slot["paths"]))
            for name, slot in sorted((state.get("services") or {}).items())
        ),
    )


# --- processes -------------------------------------------------------------------------------------


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process(pid: int | None, grace_seconds: float = 10) -> None:
    if not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def _get_json(url: str, timeout: float = 2) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _start_server(paths: StackPaths, version: str, label: str, port: int) -> dict:
    """Starts a model server for `version` and waits until it answers ready; returns its state slot."""
    log = paths.run / f"server-{version}-{port}.log"
    process = subprocess.Popen(
        [
            sys.executable, "-m", "serving.model_server",
            "--serving-dir", str(paths.serving_dir), "--version", version,
            "--label", label, "--request-log", str(paths.request_log), "--port", str(port),
        ],
        stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + serving_config.SERVING_START_SECONDS
    reason = "it did not answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StackError(
                f"the model server for version {version} exited (code {process.returncode}); see {log}"
            )
        with contextlib.suppress(OSError):
            status, body = _get_json(f"http://127.0.0.1:{port}/ready")
            if status == 200:
                return {"version": version, "port": port, "pid": process.pid, "label": label}
            reason = body.get("error", reason)
            if body.get("failed"):
                break
        time.sleep(0.2)
    stop_process(process.pid)
    raise StackError(f"the model server for version {version} did not get ready: {reason} (log: {log})")


def _nginx(paths: StackPaths, *arguments: str) -> None:
    command = ["nginx", "-p", str(paths.run), "-c", str(paths.run / "nginx.conf"), *arguments]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"nginx {' '.join(arguments) or 'start'} failed: {result.stderr.strip()}")


def _nginx_pid(paths: StackPaths) -> int | None:
    pid_file = paths.run / "nginx.pid"
    text = pid_file.read_text().strip() if pid_file.is_file() else ""  # `nginx -t` leaves it empty
    return int(text) if text else None


def _apply_traffic(paths: StackPaths, state: dict) -> None:
    """Writes nginx.conf for the state and reloads nginx (graceful: in-flight requests finish)."""
    state["generation"] = state.get("generation", 0) + 1
    conf = traffic.render(_traffic(state), state["port"], str(paths.run))
    (paths.run / "nginx.conf").write_text(conf)
    _nginx(paths, "-t")
    if alive(_nginx_pid(paths)):
        _nginx(paths, "-s", "reload")
    else:
        _nginx(paths)
    _wait_for_generation(state["port"], state["generation"])
    services = [dict(slot, label=name) for name, slot in (state.get("services") or {}).items()]
    prometheus.write_targets(
        paths.root, [slot for slot in (state["stable"], state.get("candidate")) if slot] + services
    )


def _wait_for_generation(port: int, generation: int) -> None:
    """Returns once new connections reach workers of this generation's configuration."""
    deadline = time.monotonic() + serving_config.SERVING_START_SECONDS
    answered = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            answered = _get_json(f"http://127.0.0.1:{port}/_traffic", timeout=1)[1].get("generation")
            if answered == generation:
                return
        time.sleep(0.02)
    raise StackError(
        f"nginx on port {port} did not take up the new configuration in {serving_config.SERVING_START_SECONDS:g} s "
        f"(generation {generation}; it answers {answered}): see nginx_error.log in the stack's run folder"
    )


# --- commands ---------------------------------------------------------------------------------------


def start(paths: StackPaths, version: str | None = None, port: int = serving_config.SERVING_PORT,
          prometheus_port: int = serving_config.PROMETHEUS_PORT) -> dict:  # fmt: skip
    """Starts nginx, a server for `version` (default: production) and Prometheus; returns the state."""
    for tool in ("nginx", "prometheus"):
        if shutil.which(tool) is None:
            raise StackError(
                f"'{tool}' is not installed: apt-get install nginx-light prometheus (see docs/serving.md)"
            )
    with _locked(paths):
        state = read_state(paths)
        if state and alive(state["stable"].get("pid")):
            raise StackError(
                f"the stack is running already (http://127.0.0.1:{state['port']}); `make serve-stop` first"
            )
        version = version or versions.production_version(paths.serving_dir)
        if version is None:
            raise StackError(
                f"nothing to serve: {paths.serving_dir} holds no pushed model. Run `make run` first."
            )
        for wanted in (port, prometheus_port):
            if not _port_free(wanted):
                raise StackError(
                    f"port {wanted} on 127.0.0.1 is taken; choose others (SERVE_PORT=, PROMETHEUS_PORT=)"
                )
        paths.run.mkdir(parents=True, exist_ok=True)
        started = []
        try:
            stable = _start_server(paths, version, "stable", free_port())
            started.append(stable["pid"])
            state = {"port": port, "mode": traffic.SINGLE, "stable": stable, "candidate": None,
                     "canary_percent": 0.0, "prometheus": None, "analysis": None}  # fmt: skip
            _apply_traffic(paths, state)
            state["prometheus"] = prometheus.start(paths.root, prometheus_port)
            started.append(state["prometheus"]["pid"])
            _write_state(paths, state)
        except BaseException:  # Ctrl-C included: leave nothing behind
            for pid in started:
                stop_process(pid)
            with contextlib.suppress(StackError):
                _nginx(paths, "-s", "quit")
            raise
        return state


def stop(paths: StackPaths) -> list[str]:
    """Stops every process of the stack; returns what was stopped."""
    with _locked(paths):
        state = read_state(paths) or {}
        stopped = []
        analysis = state.get("analysis") or {}
        if alive(analysis.get("pid")):
            stop_process(analysis["pid"])
            stopped.append(f"canary analysis (pid {analysis['pid']})")
        nginx_pid = _nginx_pid(paths)
        if alive(nginx_pid):
            with contextlib.suppress(StackError):
                _nginx(paths, "-s", "quit")
            _wait_gone(nginx_pid)
            stopped.append(f"nginx (pid {nginx_pid})")
        slots = [(key, state.get(key) or {}) for key in ("stable", "candidate", "prometheus")]
        slots += sorted((state.get("services") or {}).items())
        for key, slot in slots:
            if alive(slot.get("pid")):
                stop_process(slot["pid"])
                stopped.append(f"{key} (pid {slot['pid']})")
        if state:
            (paths.root / STATE_FILE).unlink()
        return stopped


def _wait_gone(pid: int | None, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def status(paths: StackPaths) -> dict:
    """The state, with each process checked: alive, and ready (the servers)."""
    state = read_state(paths)
    if state is None:
        return {"running": False}
    report = {"running": alive(_nginx_pid(paths)), "url": f"http://127.0.0.1:{state['port']}", **state}
    for key in ("stable", "candidate"):
        slot = state.get(key)
        if slot:
            with contextlib.suppress(OSError):
                slot["ready"] = _get_json(f"http://127.0.0.1:{slot['port']}/ready")[0] == 200
            slot["alive"] = alive(slot.get("pid"))
    for slot in (state.get("services") or {}).values():
        slot["alive"] = alive(slot.get("pid"))
    return report


def _running_state(paths: StackPaths) -> dict:
    state = read_state(paths)
    if state is None or not alive(_nginx_pid(paths)):
        raise StackError("the serving stack is not running: `make serve` starts it")
    return state


def _candidate_for(paths: StackPaths, state: dict, version: str, label: str) -> tuple[dict, dict | None]:
    """(a server for `version` as the second slot, the candidate it replaces). The running candidate is
    reused if it serves `version`; a replaced one keeps serving until the caller has moved traffic, so a
    version that fails to start changes nothing."""
    if version not in versions.complete_versions(paths.serving_dir):
        raise StackError(f"version {version} is not a complete pushed version in {paths.serving_dir}")
    if version == state["stable"]["version"]:
        raise StackError(f"version {version} is stable already")
    if versions.rollback_of_model(paths.serving_dir, versions.fingerprint(paths.serving_dir / version)):
        raise StackError(
            f"version {version} was rolled back; `taxi-pipeline rollback --undo {version}` first"
        )
    current = state.get("candidate")
    if current and current["version"] == version and alive(current.get("pid")):
        return dict(current, label=label), None
    return _start_server(paths, version, label, free_port()), current


def shadow(paths: StackPaths, version: str) -> dict:
    """Stable answers every request; a copy goes to `version`, whose answer is logged and discarded."""
    with _locked(paths):
        state = _running_state(paths)
        candidate, replaced = _candidate_for(paths, state, version, "shadow")
        state.update(mode=traffic.SHADOW, candidate=candidate, canary_percent=0.0)
        _apply_traffic(paths, state)
        _write_state(paths, state)
    if replaced:
        _retire(replaced)
    return state


def canary(paths: StackPaths, version: str, percent: float) -> dict:
    """`percent` % of requests to `version` (sticky by X-Request-Key); again with a new share ramps it."""
    if not 0 < percent <= 100:
        raise StackError(f"a canary share is a percentage above 0 and at most 100, not {percent:g}")
    with _locked(paths):
        state = _running_state(paths)
        candidate, replaced = _candidate_for(paths, state, version, "canary")
        state.update(mode=traffic.CANARY, candidate=candidate, canary_percent=percent)
        _apply_traffic(paths, state)
        _write_state(paths, state)
    if replaced:
        _retire(replaced)
    return state


def promote(paths: StackPaths) -> dict:
    """The candidate becomes stable and takes all traffic; the old stable stops once drained. After a
    blue-green switch, confirms it: the version switched from stops."""
    with _locked(paths):
        state = _running_state(paths)
        candidate = state.get("candidate")
        if not candidate or state["mode"] == traffic.SINGLE:
            raise StackError("there is no canary, shadow or switch to promote")
        if state["mode"] == traffic.BLUE_GREEN:
            old, candidate = candidate, state["stable"]
        else:
            old = state["stable"]
        state.update(
            mode=traffic.SINGLE, stable=dict(candidate, label="stable"), candidate=None, canary_percent=0.0
        )
        _apply_traffic(paths, state)
        _write_state(paths, state)
    _retire(old)
    return state


def switch(paths: StackPaths, version: str) -> dict:
    """Blue-green: all traffic to `version` at once; the version switched from keeps running, for a rollback."""
    with _locked(paths):
        state = _running_state(paths)
        green, replaced = _candidate_for(paths, state, version, "stable")
        blue = state["stable"]
        state.update(
            mode=traffic.BLUE_GREEN, stable=green, candidate=dict(blue, label="previous"), canary_percent=0.0
        )
        _apply_traffic(paths, state)
        _write_state(paths, state)
    if replaced:
        _retire(replaced)
    return state


def close_request_logs(paths: StackPaths, timeout_seconds: float = 10) -> list[Path]:
    """Asks every live server to close its open request-log file (SIGUSR1), and waits until each has: a
    reader then sees every trip answered until now. Returns the files that were open."""
    state = read_state(paths)
    servers = [(state or {}).get("stable"), (state or {}).get("candidate")]
    pids = [server["pid"] for server in servers if server and alive(server.get("pid"))]
    open_files = [
        path for pid in pids for path in paths.request_log.glob(f"*-{pid}.csv{request_log.OPEN_SUFFIX}")
    ]
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout_seconds
    while any(path.exists() for path in open_files) and time.monotonic() < deadline:
        time.sleep(0.1)
    still_open = [str(path) for path in open_files if path.exists()]
    if still_open:
        raise StackError(f"the request log was not closed in {timeout_seconds:g} s: {', '.join(still_open)}")
    return open_files


def restart_stable(paths: StackPaths) -> dict:
    """A new process for the stable version takes over (started, ready, then nginx switched to it); the
    old one stops after its last requests, closing its request log. No request fails."""
    with _locked(paths):
        state = _running_state(paths)
        old = state["stable"]
        state["stable"] = _start_server(paths, old["version"], "stable", free_port())
        _apply_traffic(paths, state)
        _write_state(paths, state)
    _retire(old)
    return state


def attach(paths: StackPaths, name: str, port: int, pid: int, routed_paths: list[str],
           rule_files: list[str] = ()) -> dict:  # fmt: skip
    """Attaches a running process to the stack: nginx routes `routed_paths` (exact) to it, Prometheus
    scrapes its /metrics and evaluates its `rule_files`, and `stop` stops it."""
    with _locked(paths):
        state = _running_state(paths)
        services = state.setdefault("services", {})
        services[name] = {
            "port": port,
            "pid": pid,
            "paths": list(routed_paths),
            "rule_files": list(rule_files),
        }
        _apply_traffic(paths, state)
        prometheus.reload(paths.root, state["prometheus"]["pid"], _service_rule_files(state))
        _write_state(paths, state)
        return state


def detach(paths: StackPaths, name: str) -> dict | None:
    """Stops an attached process and takes its routes and rules away; returns its slot (None if absent)."""
    with _locked(paths):
        state = _running_state(paths)
        slot = (state.get("services") or {}).pop(name, None)
        if slot is None:
            return None
        _apply_traffic(paths, state)
        prometheus.reload(paths.root, state["prometheus"]["pid"], _service_rule_files(state))
        _write_state(paths, state)
    stop_process(slot.get("pid"))
    return slot


def _service_rule_files(state: dict) -> list[str]:
    return [path for slot in (state.get("services") or {}).values() for path in slot.get("rule_files", [])]


@dataclasses.dataclass
class Rollback:
    state: dict
    version: str  # the version rolled back
    seconds: float  # from the command to every new request answered by the version kept


def rollback(paths: StackPaths, reason: str) -> Rollback:
    """All traffic back to the version that served before (one reload), and the other version recorded as
    rolled back. The server rolled back from stops after its last requests drained."""
    started = time.monotonic()
    with _locked(paths):
        state = _running_state(paths)
        if state["mode"] == traffic.SINGLE or not state.get("candidate"):
            raise StackError("nothing to roll back: no canary, shadow or switch is live")
        mode = state["mode"]
        if mode == traffic.BLUE_GREEN:
            rejected, keep = state["stable"], state["candidate"]
        else:
            rejected, keep = state["candidate"], state["stable"]
        state.update(
            mode=traffic.SINGLE, stable=dict(keep, label="stable"), candidate=None, canary_percent=0.0
        )
        _apply_traffic(paths, state)
        seconds = time.monotonic() - started
        _write_state(paths, state)
        versions.reject(paths.serving_dir, rejected["version"], reason or f"rolled back from {mode}")
    _retire(rejected)
    return Rollback(state, rejected["version"], seconds)


def _retire(slot: dict) -> None:
    """Stops a server nginx no longer sends to, after the old nginx workers' last requests."""
    time.sleep(serving_config.SERVING_DRAIN_SECONDS)
    stop_process(slot.get("pid"))


def start_analysis(paths: StackPaths, output_dir: Path, interval_seconds: float) -> dict:
    """Starts the automatic canary analysis (serving/analysis.py) in the background; returns its slot."""
    with _locked(paths):
        state = _running_state(paths)
        if state["mode"] != traffic.CANARY:
            raise StackError("automatic analysis needs a live canary")
        if alive((state.get("analysis") or {}).get("pid")):
            return state["analysis"]
        log = paths.run / "analysis.out"
        process = subprocess.Popen(
            [sys.executable, "-m", "serving.analysis", "--output-dir", str(output_dir), "--interval", str(interval_seconds)],
            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        state["analysis"] = {"pid": process.pid, "interval_seconds": interval_seconds}
        _write_state(paths, state)
        return state["analysis"]


def set_analysis(paths: StackPaths, analysis: dict | None) -> None:
    with _locked(paths):
        state = _running_state(paths)
        state["analysis"] = analysis
        _write_state(paths, state)
