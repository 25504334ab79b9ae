"""The local serving stack: starting, stopping and reporting it, and what runs in it.

Processes, all on 127.0.0.1: `SERVER_PROCESSES` model servers per live version (serving/server.py), the
supervisor replacing one that dies or hangs (serving/supervisor.py), nginx in front (serving/traffic.py
renders its configuration, serving/nginx.py applies it), mtail counting nginx's access log
(serving/access_log.py), Prometheus scraping every server and mtail, the release API (serving/release_api.py) behind the control
listener, and, during an automatic canary, the analysis (serving/analysis.py); each started by
serving/processes.py. What is live is the state
(serving/stack_state.py), changed under its lock. Moving
traffic between versions is serving/releases.py; a process beside the stack (the monitor) attaches itself
here, so serving knows nothing of it.
"""

import concurrent.futures
import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from config import serving as serving_config
from registry import versions
from serving import access_log, credentials, nginx, processes, prometheus, request_log, stack_state, traffic

# The state's vocabulary, which the stack's callers use with it (stack.StackPaths.of(settings), ...).
from serving.stack_state import StackError, StackPaths, read_state

# The release API's name among the state's services (serving/release_api.py).
RELEASE_API = "releases"
# The canary analysis's target in Prometheus (serving/prometheus/analysis_rules.yml alerts on it).
ANALYSIS_ROLE = "canary-analysis"


def ledger(paths: StackPaths) -> processes.ProcessLedger:
    """The process groups of every process the stack started (serving/processes.py)."""
    return processes.ProcessLedger(paths.run)


def start(paths: StackPaths, version: str | None = None, port: int = serving_config.SERVING_PORT,
          prometheus_port: int = serving_config.PROMETHEUS_PORT, control_port: int | None = None) -> dict:  # fmt: skip
    """Starts nginx (the public API on `port`, the control listener on `control_port`, a free one when
    None), the servers for `version` (default: production), the release API, mtail and Prometheus, and
    makes the control plane's tokens if absent (serving/credentials.py); returns the state. A start that fails or is
    interrupted stops whatever it had started."""
    for tool in ("nginx", "prometheus", "mtail"):
        if shutil.which(tool) is None:
            raise StackError(
                f"'{tool}' is not installed: apt-get install nginx-light prometheus mtail (see docs/serving.md)"
            )
    with stack_state.locked(paths):
        left = ledger(paths).members()
        if left:
            raise StackError(
                f"the stack is running already ({len(left)} processes, pids "
                f"{', '.join(str(p.pid) for p in left)}); `make serve-stop` first"
            )
        version = version or versions.production_version(paths.serving_dir)
        if version is None:
            raise StackError(
                f"nothing to serve: {paths.serving_dir} holds no pushed model. Run `make run` first."
            )
        control_port = control_port or processes.free_port()
        for wanted in (port, prometheus_port, control_port):
            if not processes.port_free(wanted):
                raise StackError(
                    f"port {wanted} on 127.0.0.1 is taken; choose others (SERVE_PORT=, PROMETHEUS_PORT=, "
                    "CONTROL_PORT=)"
                )
        try:
            credentials.ensure(paths.root)
        except credentials.CredentialError as error:
            raise StackError(str(error)) from None
        paths.run.mkdir(parents=True, exist_ok=True)
        try:
            stable = start_server(paths, version, "stable")
            mtail = access_log.start(paths.run, ledger(paths))
            state = {"port": port, "control_port": control_port, "mode": traffic.SINGLE, "stable": stable,
                     "candidate": None, "canary_percent": 0.0, "prometheus": None, "analysis": None,
                     "mtail": mtail, "services": dict([start_release_api(paths)])}  # fmt: skip
            apply_traffic(paths, state)
            state["prometheus"] = prometheus.start(paths.root, prometheus_port, ledger(paths))
            stack_state.write_state(paths, state)  # before the supervisor, which runs while a state exists
            state["supervisor"] = {"pid": start_supervisor(paths)}
            stack_state.write_state(paths, state)
        except BaseException:  # Ctrl-C included: leave nothing behind
            with processes.interrupts_deferred():
                ledger(paths).stop_all()
                stack_state.remove_state(paths)
            raise
        return state


def stop(paths: StackPaths) -> list[str]:
    """Stops every process of the stack, each the way it stops cleanly (nginx lets its requests finish, a
    server closes its request log), then any process left in a group the stack recorded; returns what was
    stopped."""
    with stack_state.locked(paths), processes.interrupts_deferred():
        state = read_state(paths) or {}
        stopped = []
        # The supervisor and the analysis first: they act on the servers and the traffic.
        for key, what in (("supervisor", "supervisor"), ("analysis", "canary analysis")):
            pid = (state.get(key) or {}).get("pid")
            if processes.alive(pid):
                processes.stop(pid)
                stopped.append(f"{what} (pid {pid})")
        nginx_pid = nginx.stop(paths.run)
        if nginx_pid is not None:
            stopped.append(f"nginx (pid {nginx_pid})")
        slots = [
            (key, {"pid": pid}) for key in ("stable", "candidate") for pid in server_pids(state.get(key))
        ]
        slots += [("mtail", state.get("mtail") or {}), ("prometheus", state.get("prometheus") or {})]
        slots += sorted((state.get("services") or {}).items())
        for key, slot in slots:
            if processes.alive(slot.get("pid")):
                processes.stop(slot["pid"])
                stopped.append(f"{key} (pid {slot['pid']})")
        for entry in ledger(paths).stop_all():
            stopped.append(f"{entry['what']} (process group {entry['group']}, left over)")
        stack_state.remove_state(paths)
        return stopped


def status(paths: StackPaths) -> dict:
    """The state, with each process checked: alive, and ready (the servers)."""
    state = read_state(paths)
    if state is None:
        return {"running": False}
    report = {"running": nginx.running(paths.run), "url": f"http://127.0.0.1:{state['port']}",
              "control_url": f"http://127.0.0.1:{state['control_port']}",
              "credentials": {role: str(credentials.token_path(paths.root, role)) for role in credentials.ROLES},
              **state}  # fmt: skip
    for key in ("stable", "candidate"):
        for process in (state.get(key) or {}).get("processes", []):
            process["ready"] = False
            with contextlib.suppress(OSError, ValueError):
                process["ready"] = processes.get_json(f"http://127.0.0.1:{process['port']}/ready")[0] == 200
            process["alive"] = processes.alive(process["pid"])
        if state.get(key):
            state[key]["ready"] = all(process["ready"] for process in state[key]["processes"])
    for slot in [
        *(state.get("services") or {}).values(),
        *(state.get(key) for key in ("supervisor", "prometheus", "mtail", "analysis")),
    ]:
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
    """Starts `SERVER_PROCESSES` model servers for `version` on free ports, together, and waits until each
    answers ready; returns the version's state slot (`port`, `pid`: its first process's; `processes`:
    each one's). A version that fails to load is reported at once, with the server's reason, and none of
    its processes is left running."""
    ports: list[int] = []
    while len(ports) < serving_config.SERVER_PROCESSES:
        port = processes.free_port()
        ports += [] if port in ports else [port]
    with concurrent.futures.ThreadPoolExecutor(len(ports)) as pool:
        started = [pool.submit(_spawn_server, paths, version, label, port, set(ports)) for port in ports]
        concurrent.futures.wait(started)
    failed = [future.exception() for future in started if future.exception() is not None]
    if failed:
        for future in started:
            if future.exception() is None:
                processes.stop(future.result()[1])
        raise failed[0]
    # The ports the servers run on, a port replaced on the way included.
    server_processes = [{"port": port, "pid": pid} for port, pid in (future.result() for future in started)]
    first = server_processes[0]
    return {"version": version, "port": first["port"], "pid": first["pid"], "label": label,
            "processes": server_processes}  # fmt: skip


# uvicorn's words when the port it was given is taken by the time it binds: a free port is only free when
# probed, and a client's outgoing connection (or another stack) can take any port of the ephemeral range.
PORT_TAKEN = "address already in use"


def _spawn_server(
    paths: StackPaths, version: str, label: str, port: int, others: set[int]
) -> tuple[int, int]:
    """(port, pid) of one model server for `version` on `port`, ready; a port taken between its probe and
    the server's bind is replaced by another free one (none of `others`, the version's other processes'),
    up to `SERVER_PORT_ATTEMPTS` attempts in all."""
    tried = set(others)
    for attempt in range(1, serving_config.SERVER_PORT_ATTEMPTS + 1):
        log = server_log(paths, version, port)
        logged_before = log.stat().st_size if log.exists() else 0
        try:
            return port, spawn_server_process(paths, version, label, port)
        except StackError:
            with log.open("rb") as written:  # what this attempt wrote: the log is appended to
                written.seek(logged_before)
                taken = PORT_TAKEN in written.read().decode(errors="replace")
            if not taken or attempt == serving_config.SERVER_PORT_ATTEMPTS:
                raise
            tried.add(port)
            while port in tried:
                port = processes.free_port()
    raise AssertionError("unreachable: the last attempt returns or raises")


def server_log(paths: StackPaths, version: str, port: int) -> Path:
    return paths.run / f"server-{version}-{port}.log"


def start_supervisor(paths: StackPaths) -> int:
    """Starts the supervisor (serving/supervisor.py), which replaces a dead or hung server process."""
    command = [sys.executable, "-m", "serving.supervisor", "--serving-dir", str(paths.serving_dir),
               "--stack-root", str(paths.root), "--request-log", str(paths.request_log)]  # fmt: skip
    return processes.spawn(command, paths.run / "supervisor.out", "the supervisor", None, 0, ledger(paths))


def start_release_api(paths: StackPaths) -> tuple[str, dict]:
    """Starts the release API (serving/release_api.py) on a free loopback port; (its name, its slot among
    the state's services, which nginx's control listener routes its paths to)."""
    port = processes.free_port()
    command = [sys.executable, "-m", "serving.release_api", "--serving-dir", str(paths.serving_dir),
               "--stack-root", str(paths.root), "--request-log", str(paths.request_log), "--port", str(port)]  # fmt: skip
    pid = processes.spawn(
        command,
        paths.run / f"release-api-{port}.log",
        "the release API",
        f"http://127.0.0.1:{port}/ready",
        serving_config.SERVING_START_SECONDS,
        ledger(paths),
    )
    return RELEASE_API, {"port": port, "pid": pid, "paths": release_api_paths(), "rule_files": []}


def release_api_paths() -> list[str]:
    """The exact paths nginx's control listener routes to the release API."""
    base = serving_config.RELEASES_PATH
    return [base, *(f"{base}/{action}" for action in serving_config.RELEASE_ACTIONS)]


def spawn_server_process(paths: StackPaths, version: str, label: str, port: int, wait: bool = True) -> int:
    """Starts one model server for `version` on `port`, recorded in the ledger; its pid, once it answers
    ready (at once with `wait=False`: the supervisor's replacements, which nginx finds when they are)."""
    # Its role first (the route it logs under by default), then every label nginx may send it: which
    # version a label means is nginx's to say (a promoted canary answers for `stable`).
    labels = [label, *(other for other in traffic.LABELS if other != label)]
    command = [
        sys.executable, "-m", "serving.server",
        "--serving-dir", str(paths.serving_dir), "--version", version,
        *(f"--label={one}" for one in labels), "--request-log", str(paths.request_log), "--port", str(port),
    ]  # fmt: skip
    return processes.spawn(
        command,
        server_log(paths, version, port),
        f"the model server for version {version}",
        f"http://127.0.0.1:{port}/ready" if wait else None,
        serving_config.SERVING_START_SECONDS,
        ledger(paths),
    )


def server_pids(slot: dict | None) -> list[int]:
    """The pids of a version's server processes."""
    return [process["pid"] for process in (slot or {}).get("processes", [])]


def retire(slot: dict) -> None:
    """Stops a version's servers nginx no longer sends to, after the old nginx workers' last requests."""
    time.sleep(serving_config.SERVING_DRAIN_SECONDS)
    for pid in server_pids(slot):
        processes.stop(pid)


def apply_traffic(paths: StackPaths, state: dict) -> None:
    """Has nginx route as `state` says (a new generation of its configuration; graceful: in-flight
    requests finish) and Prometheus scrape every server and attached service."""
    state["generation"] = state.get("generation", 0) + 1
    conf = traffic.render(_traffic(state), state["port"], str(paths.run), state["control_port"])
    nginx.apply(
        paths.run,
        conf,
        state["control_port"],
        state["generation"],
        serving_config.SERVING_START_SECONDS,
        ledger(paths),
    )
    write_scrape_targets(paths, state)


def write_scrape_targets(paths: StackPaths, state: dict) -> None:
    """Has Prometheus scrape every server process, mtail, the attached services and, while a canary is
    live, its analysis (whose target going down is what fires TaxiCanaryAnalysisDown)."""
    services = [dict(slot, label=name) for name, slot in (state.get("services") or {}).items()]
    analysis = state.get("analysis") if state["mode"] == traffic.CANARY else None
    analysis = dict(analysis, label=ANALYSIS_ROLE) if analysis and analysis.get("port") else None
    servers = [dict(slot, **process) for slot in (state["stable"], state.get("candidate")) if slot
               for process in slot["processes"]]  # fmt: skip
    own = servers + [slot for slot in (state.get("mtail"), analysis) if slot]
    prometheus.write_targets(paths.root, own + services)


def _traffic(state: dict) -> traffic.Traffic:
    def backend(slot):
        return traffic.Backend(slot["version"], tuple(p["port"] for p in slot["processes"])) if slot else None

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
    pids = [pid for server in servers for pid in server_pids(server) if processes.alive(pid)]
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
            serving_config.SERVING_START_SECONDS, ledger(paths),
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
