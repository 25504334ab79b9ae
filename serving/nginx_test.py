"""nginx.apply against Debian's nginx: once a reload has returned, no new connection reaches a worker of
the configuration before it. nginx's master starts the new workers and only about 100 ms later tells the
old ones to stop accepting (`ngx_msleep(100)` in its reconfigure step), so a new worker answering is not
enough: under load that window held a dozen requests of a shadow release without their mirror copies."""

import http.client
import json

import pytest

from serving import nginx, processes, traffic
from tests.support import system_tools


def _conf(tmp_path, control_port: int, generation: int) -> str:
    return traffic.render(
        traffic.Traffic(traffic.SINGLE, traffic.Backend("100", (9001,)), generation=generation),
        port=processes.free_port(),
        run_dir=str(tmp_path),
        control_port=control_port,
    )


def _generation_on_a_new_connection(port: int) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/_traffic")
        return json.loads(connection.getresponse().read())["generation"]
    finally:
        connection.close()


@pytest.fixture
def running_nginx(tmp_path):
    system_tools.require("nginx")
    port, ledger = processes.free_port(), processes.ProcessLedger(tmp_path)
    nginx.apply(tmp_path, _conf(tmp_path, port, 1), port, 1, 10, ledger)
    yield port, ledger
    nginx.stop(tmp_path)


def test_after_a_reload_returns_every_new_connection_sees_the_new_configuration(tmp_path, running_nginx):
    port, ledger = running_nginx
    for generation in range(2, 7):
        nginx.apply(tmp_path, _conf(tmp_path, port, generation), port, generation, 10, ledger)
        seen = [_generation_on_a_new_connection(port) for _ in range(40)]
        assert set(seen) == {generation}, seen
