"""The local serving stack: starting, stopping and reporting it, and what runs in it.

Processes, all on 127.0.0.1: one model server per live version (serving/server.py), nginx in front
(serving/traffic.py renders its configuration, serving/nginx.py applies it), mtail counting nginx's access
log (serving/access_log.py), Prometheus scraping every server and mtail, and, during an automatic canary,
the analysis (serving/analysis.py); each started by serving/processes.py. What is live is the state (serving/stack_state.py), changed under its lock. Moving
traffic between versions is serving/releases.py; a process beside the stack (the monitor) attaches itself
here, so serving knows nothing of it.
"""

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from config import serving as serving_config
from registry import versions
from serving import access_log, nginx, processes, prometheus, request_log, stack_state, traffic

# The state's vocabulary, which the stack's callers use with it (stack.StackPaths.of(settings), ...).
from serving.stack_state import StackError, StackPaths, read_state

# The canary analysis's target in Prometheus (serving/prometheus/analysis_rules.yml alerts on it).
ANALYSIS_ROLE = "canary-analysis"


def start(paths: StackPaths, version: str | None = None, port: int = serving_config.SERVING_PORT,
          prometheus_port: int = serving_config.PROMETHEUS_PORT) -> dict:  # fmt: skip
    """Starts nginx, a server for `version` (default: production), mtail and Prometheus; returns the state."""
    for tool in ("nginx", "prometheus", "mtail"):
        if shutil.which(tool) is None:
            raise StackError(
                f"'{tool}' is not installed: apt-get install nginx-light prometheus mtail (see docs/serving.md)"
            )
    with stack_state.locked(paths):
        state = read_state(paths)
        if state and processes.alive(state["stable"].get("pid")):
            raise StackError(
                f"the stack is running already (http://127.0.0.1:{state['port']}); `make serve-stop` first"
            )
        version = version or versions.production_version(paths.serving_dir)
        if version is None:
            raise StackError(
                f"nothing to serve: {paths.serving_dir} holds no pushed model. Run `make run` first."
            )
        for wanted in (port, prometheus_port):
            if not processes.port_free(wanted):
                raise StackError(
                    f"port {wanted} on 127.0.0.1 is taken; choose others (SERVE_PORT=, PROMETHEUS_PORT=)"
                )
        paths.run.mkdir(parents=True, exist_ok=True)
        started = []
        try:
            stable = start_server(paths, version, "stable")
            started.append(stable["pid"])
            mtail = access_log.start(paths.run)
            started.append(mtail["pid"])
            state = {"port": port, "mode": traffic.SINGLE, "stable": stable, "candidate": None,
                     "canary_percent": 0.0, "prometheus": None, "analysis": None, "mtail": mtail}  # fmt: skip
            apply_traffic(paths, state)
            state["prometheus"] = prometheus.start(paths.root, prometheus_port)
            started.append(state["prometheus"]["pid"])
            stack_state.write_state(paths, state)
        except BaseException:  # Ctrl-C included: leave nothing behind
            for pid in started:
                processes.stop(pid)
            nginx.ask_to_stop(paths.run)
            raise
        return state


def stop(paths: StackPaths) -> list[str]:
    """Stops every process of the stack; returns what was stopped."""
    with stack_state.locked(paths):
        state = read_state(paths) or {}
        stopped = []
        analysis = state.get("analysis") or {}
        if processes.alive(analysis.get("pid")):
            processes.stop(analysis["pid"])
            stopped.append(f"canary analysis (pid {analysis['pid']})")
        nginx_pid = nginx.stop(paths.run)
        if nginx_pid is not None:
            stopped.append(f"nginx (pid {nginx_pid})")
        slots = [(key, state.get(key) or {}) for key in ("stable", "candidate", "mtail", "prometheus")]
        slots += sorted((state.get("services") or {}).items())
        for key, slot in slots:
            if processes.alive(slot.get("pid")):
                processes.stop(slot["pid"])
                stopped.append(f"{key} (pid {slot['pid']})")
        if state:
            stack_state.remove_state(paths)
        return stopped


def status(paths: StackPaths) -> dict:
    """The state, with each process checked: alive, and ready (the servers)."""
    state = read_state(paths)
    if state is None:
        return {"running": False}
    report = {"running": nginx.running(paths.run), "url": f"http://127.0.0.1:{state['port']}", **state}
    for key in ("stable", "candidate"):
        slot = state.get(key)
        if slot:
            with contextlib.suppress(OSError):
                slot["ready"] = processes.get_json(f"http://127.0.0.1:{slot['port']}/ready")[0] == 200
            slot["alive"] = processes.alive(slot.get("pid"))
    for slot in [*(state.get("services") or {}).values(), state.get("mtail"), state.get("analysis")]:
        if slot:
            slot["alive"] = processes.alive(slot.get("pid"))
    return report


def running_state(paths: StackPaths) -> dict:
    """The state of a running stack (call it holding the lock); StackError when none runs."""
    state = read_state(paths)
    if state is None or not nginx.running(paths.run):
        raise StackError("the serving stack is not running: `make serve` starts it")
    return state


# --- the model servers and the traffic between them ------------------------------------------------


def start_server(paths: StackPaths, version: str, label: str) -> dict:
    """Starts a model server for `version` on a free port and waits until it answers ready; returns its
    state slot. A version that fails to load is reported at once, with the server's reason."""
    port = processes.free_port()
    command = [
        sys.executable, "-m", "serving.server",
        "--serving-dir", str(paths.serving_dir), "--version", version,
        "--label", label, "--request-log", str(paths.request_log), "--port", str(port),
    ]  # fmt: skip
    pid = processes.spawn(
        command,
        paths.run / f"server-{version}-{port}.log",
        f"the model server for version {version}",
        f"http://127.0.0.1:{port}/ready",
        serving_config.SERVING_START_SECONDS,
    )
    return {"version": version, "port": port, "pid": pid, "label": label}


def retire(slot: dict) -> None:
    """Stops a server nginx no longer sends to, after the old nginx workers' last requests."""
    time.sleep(serving_config.SERVING_DRAIN_SECONDS)
    processes.stop(slot.get("pid"))


def apply_traffic(paths: StackPaths, state: dict) -> None:
    """Has nginx route as `state` says (a new generation of its configuration; graceful: in-flight
    requests finish) and Prometheus scrape every server and attached service."""
    state["generation"] = state.get("generation", 0) + 1
    conf = traffic.render(_traffic(state), state["port"], str(paths.run))
    nginx.apply(paths.run, conf, state["port"], state["generation"], serving_config.SERVING_START_SECONDS)
    write_scrape_targets(paths, state)


def write_scrape_targets(paths: StackPaths, state: dict) -> None:
    """Has Prometheus scrape every server, mtail, the attached services and, while a canary is live, its
    analysis (whose target going down is what fires TaxiCanaryAnalysisDown)."""
    services = [dict(slot, label=name) for name, slot in (state.get("services") or {}).items()]
    analysis = state.get("analysis") if state["mode"] == traffic.CANARY else None
    analysis = dict(analysis, label=ANALYSIS_ROLE) if analysis and analysis.get("port") else None
    own = [slot for slot in (state["stable"], state.get("candidate"), state.get("mtail"), analysis) if slot]
    prometheus.write_targets(paths.root, own + services)


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


def close_request_logs(paths: StackPaths, timeout_seconds: float = 10) -> list[Path]:
    """Asks every live server to close its open request-log file (SIGUSR1), and waits until each has: a
    reader then sees every trip answered until now. Returns the files that were open."""
    state = read_state(paths)
    servers = [(state or {}).get("stable"), (state or {}).get("candidate")]
    pids = [server["pid"] for server in servers if server and processes.alive(server.get("pid"))]
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


# --- what runs beside the servers ---------------------------------------------------------------------


def attach(paths: StackPaths, name: str, port: int, pid: int, routed_paths: list[str],
           rule_files: list[str] = ()) -> dict:  # fmt: skip
    """Attaches a running process to the stack: nginx routes `routed_paths` (exact) to it, Prometheus
    scrapes its /metrics and evaluates its `rule_files`, and `stop` stops it."""
    with stack_state.locked(paths):
        state = running_state(paths)
        services = state.setdefault("services", {})
        services[name] = {
            "port": port,
            "pid": pid,
            "paths": list(routed_paths),
            "rule_files": list(rule_files),
        }
        apply_traffic(paths, state)
        prometheus.reload(paths.root, state["prometheus"]["pid"], _service_rule_files(state))
        stack_state.write_state(paths, state)
        return state


def detach(paths: StackPaths, name: str) -> dict | None:
    """Stops an attached process and takes its routes and rules away; returns its slot (None if absent)."""
    with stack_state.locked(paths):
        state = running_state(paths)
        slot = (state.get("services") or {}).pop(name, None)
        if slot is None:
            return None
        apply_traffic(paths, state)
        prometheus.reload(paths.root, state["prometheus"]["pid"], _service_rule_files(state))
        stack_state.write_state(paths, state)
    processes.stop(slot.get("pid"))
    return slot


def _service_rule_files(state: dict) -> list[str]:
    return [path for slot in (state.get("services") or {}).values() for path in slot.get("rule_files", [])]


def start_analysis(paths: StackPaths, output_dir: Path, interval_seconds: float,
                   options: tuple[str, ...] = ()) -> dict:  # fmt: skip
    """Starts the automatic canary analysis (serving/analysis.py, with its command-line `options`) in the
    background; returns its slot once it serves its heartbeat at /metrics, which Prometheus scrapes."""
    with stack_state.locked(paths):
        state = running_state(paths)
        if state["mode"] != traffic.CANARY:
            raise StackError("automatic analysis needs a live canary")
        if processes.alive((state.get("analysis") or {}).get("pid")):
            return state["analysis"]
        port = processes.free_port()
        command = [sys.executable, "-m", "serving.analysis", "--output-dir", str(output_dir),
                   "--interval", str(interval_seconds), "--metrics-port", str(port), *options]  # fmt: skip
        pid = processes.spawn(
            command, paths.run / "analysis.out", "the canary analysis", f"http://127.0.0.1:{port}/metrics",
            serving_config.SERVING_START_SECONDS,
        )  # fmt: skip
        state["analysis"] = {"pid": pid, "port": port, "interval_seconds": interval_seconds}
        write_scrape_targets(paths, state)
        stack_state.write_state(paths, state)
        return state["analysis"]


def set_analysis(paths: StackPaths, analysis: dict | None) -> None:
    with stack_state.locked(paths):
        state = running_state(paths)
        state["analysis"] = analysis
        write_scrape_targets(paths, state)
        stack_state.write_state(paths, state)
