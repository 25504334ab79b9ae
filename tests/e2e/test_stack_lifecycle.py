"""Starting and stopping the serving stack leaves nothing behind, and a restart works at once: real
processes on free loopback ports, driven through `taxi-pipeline serve` as a user drives it.

The processes are listed by process group (`ps`'s pgid), the groups read from the stack's ledger
(serving/processes.py) before each stop, never by name; and every process whose command line names the
stack's folder must be in one of those groups, so the ledger misses none.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clients import load
from config import folders
from config import serving as serving_config
from registry import versions
from serving import processes, request_contract, stack
from tests.support import serving_models, system_tools

pytestmark = pytest.mark.e2e

PREDICT = f"/v1/models/{serving_config.SERVING_MODEL_NAME}:predict"
TCP_TIME_WAIT = "06"  # /proc/net/tcp's state column


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    system_tools.require("nginx", "prometheus")
    return serving_models.train(tmp_path_factory.mktemp("lifecycle") / "model", seed=0)


@pytest.fixture
def settings(model, tmp_path) -> folders.Settings:
    """An output folder serving version 100, with 600 a copy that will not load (a bad push)."""
    settings = folders.Settings(output_dir=tmp_path / "outputs", data_root=None)
    not_a_model = tmp_path / "not_a_model"  # pushed whole, but its graph was truncated before
    shutil.copytree(model, not_a_model)
    (not_a_model / "saved_model.pb").write_bytes(b"truncated by a bad export")
    versions.write_version(settings.serving_model_dir, model, "100")
    versions.write_version(settings.serving_model_dir, not_a_model, "600")
    yield settings
    stack.stop(stack.StackPaths.of(settings))  # whatever a failed test left


def _serve(settings: folders.Settings, *arguments: str, **popen) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "serve",
        "--output-dir",
        str(settings.output_dir),
        *arguments,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)


def _run(settings: folders.Settings, *arguments: str) -> tuple[int, str]:
    process = _serve(settings, *arguments)
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def _start_arguments(port: int, version: str = "100") -> list[str]:
    return [
        "start",
        "--version",
        version,
        "--port",
        str(port),
        "--prometheus-port",
        str(processes.free_port()),
    ]


def _groups(settings: folders.Settings) -> set[int]:
    return {entry["group"] for entry in stack.ledger(stack.StackPaths.of(settings)).entries()}


def _live_processes() -> list[tuple[int, int, str]]:
    """Process id, group and command of every process but zombies. `ps`'s state column is read to skip
    zombies and then dropped: it changes as a process runs or sleeps."""
    listed = subprocess.run(["ps", "-e", "-o", "pid=,pgid=,stat=,args="], capture_output=True, text=True)
    found = []
    for line in listed.stdout.splitlines():
        pid, pgid, state, command = line.split(None, 3)
        if not state.startswith("Z"):
            found.append((int(pid), int(pgid), command.strip()))
    return found


def _running(groups: set[int]) -> list[str]:
    """The running processes in these process groups."""
    return [f"{pid} {pgid} {command}" for pid, pgid, command in _live_processes() if pgid in groups]


def _without_nginx_workers(lines: list[str]) -> list[str]:
    return [line for line in lines if "nginx: worker process" not in line]


def _naming(folder: Path) -> list[str]:
    """The running processes whose command line names `folder`, this test's own aside."""
    return [
        f"{pid} {pgid} {command}"
        for pid, pgid, command in _live_processes()
        if str(folder) in command and pid != os.getpid()
    ]


def _time_wait_on(port: int) -> int:
    """Connections in TIME_WAIT whose local side is `port`: what the old free-port probe took for taken."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        count += state == TCP_TIME_WAIT and int(local.split(":")[1], 16) == port
    return count


def test_stop_leaves_nothing_running_and_a_restart_on_the_same_port_works_at_once(settings):
    port = processes.free_port()
    status, output = _run(settings, *_start_arguments(port))
    assert status == 0, output
    groups = _groups(settings)
    running = _running(groups)
    # stable's servers, the supervisor, the release API, nginx, mtail, Prometheus, the monitor
    assert len(groups) == serving_config.SERVER_PROCESSES + 6, groups
    assert sorted(_naming(settings.output_dir)) == sorted(
        line for line in running if str(settings.output_dir) in line
    )
    clients = [load.Client(f"http://127.0.0.1:{port}") for _ in range(5)]
    for client in clients:  # kept open: nginx closes them as it quits, and their TIME_WAIT is on its port
        assert client.post(PREDICT, {"instances": [request_contract.EXAMPLE_TRIP]})[0] == 200

    status, output = _run(settings, "stop")

    assert status == 0, output
    assert _running(groups) == [] and _naming(settings.output_dir) == []
    for client in clients:  # nginx's side leaves FIN_WAIT2 for TIME_WAIT once the client closes too
        client.close()
    assert _time_wait_on(port) > 0  # the condition that used to refuse a restart for a minute
    started = time.monotonic()
    status, output = _run(settings, *_start_arguments(port))
    assert status == 0, output
    print(f"restarted in {time.monotonic() - started:.1f} s")
    groups = _groups(settings)
    status, output = _run(settings, "stop")
    assert status == 0, output
    assert _running(groups) == [] and _naming(settings.output_dir) == []


def test_a_start_or_a_release_that_fails_leaves_nothing_running(settings):
    status, output = _run(settings, *_start_arguments(processes.free_port(), version="600"))
    assert status == 2 and "version 600 did not get ready" in output, output
    assert _naming(settings.output_dir) == [] and stack.read_state(stack.StackPaths.of(settings)) is None

    status, output = _run(settings, *_start_arguments(processes.free_port()))
    assert status == 0, output
    running = _running(_groups(settings))
    for refused in (["canary", "100", "--percent", "250"], ["canary", "600", "--percent", "10"]):
        status, output = _run(settings, *refused)
        assert status == 2 and "error:" in output, output
    groups = _groups(settings)  # the failed candidate's among them
    # nginx's workers are replaced by each reload (an old one may still be finishing its connections):
    # compare everything else, the master included.
    assert _without_nginx_workers(_running(groups)) == _without_nginx_workers(running)
    status, output = _run(settings, "stop")
    assert _running(groups) == [] and _naming(settings.output_dir) == []


@pytest.mark.parametrize("interrupted_at", ["the model server for version 100", "the monitor"])
def test_a_start_interrupted_by_sigint_leaves_nothing_running(settings, interrupted_at):
    """SIGINT, as a Ctrl-C sends it, once the ledger shows the process named: while the model server
    loads (the first), and while the monitor starts (the last, after nginx and Prometheus)."""
    ledger = stack.ledger(stack.StackPaths.of(settings))
    # SIGINT's disposition as a terminal gives it: a test runner started in the background by a shell
    # without job control (`cmd &`, as CI can be) ignores SIGINT, and its children inherit that.
    process = _serve(
        settings,
        *_start_arguments(processes.free_port()),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while interrupted_at not in {e["what"] for e in ledger.entries()} and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        time.sleep(0.01)
    groups = _groups(settings)

    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)

    assert process.returncode == 130 and "interrupted" in output, output
    assert _running(groups) == [] and _naming(settings.output_dir) == []
    assert stack.read_state(stack.StackPaths.of(settings)) is None


def test_a_server_port_taken_before_the_server_binds_it_is_replaced_by_another(settings, monkeypatch):
    """A free port is only free when probed: here another socket listens on the first one handed out
    before the server binds it, as a client's outgoing connection or another stack can take it."""
    paths = stack.StackPaths.of(settings)
    paths.run.mkdir(parents=True, exist_ok=True)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        taken = squatter.getsockname()[1]
        handed_out = iter([taken])
        real_free_port = processes.free_port
        monkeypatch.setattr(processes, "free_port", lambda: next(handed_out, None) or real_free_port())
        slot = stack.start_server(paths, "100", "stable")
        try:
            ports = [one["port"] for one in slot["processes"]]
            assert taken not in ports and len(set(ports)) == serving_config.SERVER_PROCESSES
            assert "address already in use" in stack.server_log(paths, "100", taken).read_text()
            for port in ports:
                assert processes.get_json(f"http://127.0.0.1:{port}/ready")[0] == 200
        finally:
            for one in slot["processes"]:
                processes.stop(one["pid"])
