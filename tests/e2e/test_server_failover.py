"""A dead or hung stable server costs no requests and comes back by itself: the stack's stable version
runs as two processes behind nginx, which retries on the other; the supervisor replaces the one that
died (kill -9) or stopped answering (SIGSTOP). Real stack on loopback under bounded load (four client
threads back to back, at most `LOAD_SECONDS`), as docs/serving.md's figures were measured.
"""

import os
import signal
import time

import pytest

from clients import load
from config import folders
from config import serving as serving_config
from registry import versions
from serving import processes, request_contract, stack
from tests.support import serving_models, system_tools

pytestmark = pytest.mark.e2e

PREDICT = f"/v1/models/{serving_config.SERVING_MODEL_NAME}:predict"
CLIENTS = 4
LOAD_SECONDS = 60  # an upper bound: the load stops once the replacement has answered for a while
REPLACED_WITHIN_SECONDS = 10  # the bound, from the signal to a new process in the state


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    system_tools.require("nginx", "prometheus")
    root = tmp_path_factory.mktemp("failover")
    settings = folders.Settings(output_dir=root / "outputs", data_root=None)
    versions.write_version(settings.serving_model_dir, serving_models.train(root / "model", seed=0), "100")
    paths = stack.StackPaths.of(settings)
    try:
        stack.start(paths, "100", processes.free_port(), processes.free_port())
        yield paths
    finally:
        stack.stop(paths)


def _answers_ready(port: int) -> bool:
    try:
        return processes.get_json(f"http://127.0.0.1:{port}/ready", timeout=1)[0] == 200
    except (OSError, ValueError):
        return False


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGSTOP], ids=["kill-9", "sigstop"])
def test_a_dead_or_hung_stable_process_costs_no_request_and_is_replaced(paths, signum):
    state = stack.read_state(paths)
    assert len(state["stable"]["processes"]) == serving_config.SERVER_PROCESSES >= 2
    victim = state["stable"]["processes"][0]
    url = f"http://127.0.0.1:{state['port']}"
    body = {"instances": [request_contract.EXAMPLE_TRIP]}
    clients = [load.BackgroundLoad(url, PREDICT, body, max_seconds=LOAD_SECONDS) for _ in range(CLIENTS)]
    for client in clients:
        client.__enter__()
    replaced = ready = None
    try:
        time.sleep(3)  # load running on both processes
        os.kill(victim["pid"], signum)
        sent = time.monotonic()
        while time.monotonic() - sent < 45 and ready is None:
            current = stack.read_state(paths)["stable"]["processes"][0]
            if replaced is None and current["pid"] != victim["pid"]:
                replaced = time.monotonic() - sent
            if replaced is not None and _answers_ready(current["port"]):
                ready = time.monotonic() - sent
            time.sleep(0.1)
        time.sleep(3)  # the replacement takes its share again
    finally:
        tallies = [client.stop() for client in clients]
    total, failed = sum(t.total for t in tallies), sum(t.failed for t in tallies)
    errors = [error for t in tallies for error in t.errors][:5]
    statuses = {}
    for tally in tallies:
        for status, count in tally.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    print(
        f"{signal.Signals(signum).name}: {failed} of {total} requests failed ({statuses}, {errors}); "
        f"replaced after {replaced} s, ready after {ready} s"
    )
    assert total > 1_000
    assert failed / total < 0.001, (statuses, errors)
    assert replaced is not None and replaced <= REPLACED_WITHIN_SECONDS, replaced
    assert ready is not None, "the replacement never answered ready"
    report = stack.status(paths)
    assert all(p["alive"] and p["ready"] for p in report["stable"]["processes"]), report["stable"]
    assert report["supervisor"]["alive"]
    assert not processes.alive(victim["pid"])  # the stopped one was killed, not left hanging
