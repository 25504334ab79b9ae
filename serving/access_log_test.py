"""The access log's contract: nginx's `taxi_access` format (serving/nginx.conf.j2, rendered as the stack
renders it) written for each way a request can end, and mtail's program (serving/mtail/) counting those
lines as the canary analysis reads them. Runs Debian's mtail, once over the file (`--one_shot`)."""

import json
import re
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from serving import access_log, nginx, traffic
from tests.support import system_tools

PREDICT = "/v1/models/taxi:predict"


def _log_format(mode: str = traffic.CANARY) -> tuple[str, str]:
    """(the `taxi_access` format string, the access log's path) of nginx's configuration for `mode`."""
    conf = traffic.render(
        traffic.Traffic(mode, traffic.Backend("100", 9001), traffic.Backend("200", 9002), canary_percent=10),
        port=9000,
        run_dir="/run/stack",
    )
    directive = re.search(r"log_format taxi_access escape=json ((?:'[^']*'\s*)+);", conf)
    path = re.search(r"access_log (\S+) taxi_access", conf)
    assert directive and path, "serving/nginx.conf.j2 no longer defines the taxi_access log"
    return "".join(re.findall(r"'([^']*)'", directive.group(1))), path.group(1)


def _line(log_format: str, **values: str) -> str:
    """One line as nginx writes it: each `$variable` of the format replaced by its value, JSON-escaped."""
    defaults = {"time_iso8601": "2026-12-04T20:41:57+00:00", "request_id": "0f3e", "uri": PREDICT}
    values = {**defaults, **values}
    return re.sub(r"\$([a-z_0-9]+)", lambda match: json.dumps(values[match.group(1)])[1:-1], log_format)


def _request(version, route, status, seconds, addr, upstream_status, uri=PREDICT) -> dict:
    return dict(
        answered_version=version, answered_route=route, status=status, request_time=seconds,
        upstream_addr=addr, upstream_status=upstream_status, upstream_response_time=seconds, uri=uri,
    )  # fmt: skip


def _count(tmp_path, lines: list[str]) -> dict:
    """mtail's metrics after reading `lines`: {(sample name, sorted labels): value}."""
    mtail = system_tools.require("mtail")
    log = tmp_path / nginx.ACCESS_LOG
    log.write_text("".join(line + "\n" for line in lines))
    command = [mtail, *access_log.mtail_command([log], port=0, one_shot=True)[1:]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(result.stdout)
        for sample in family.samples
    }


def _requests(metrics: dict, **labels) -> float:
    wanted = set(labels.items())
    return sum(
        value
        for (name, found), value in metrics.items()
        if name == "taxi_nginx_requests_total" and wanted <= set(found)
    )


def test_each_outcome_is_counted_for_the_version_nginx_chose(tmp_path):
    log_format, path = _log_format()
    assert path == f"/run/stack/{nginx.ACCESS_LOG}"
    canary = [
        _request("200", "canary", "200", "0.004", "127.0.0.1:9002", "200"),
        _request("200", "canary", "500", "0.003", "127.0.0.1:9002", "500"),  # the model failed
        _request("200", "canary", "502", "0.000", "127.0.0.1:9002", "502"),  # refused or reset: not there
        _request("200", "canary", "504", "60.001", "127.0.0.1:9002", "504"),  # nginx's timeout
        _request("200", "canary", "499", "2.002", "127.0.0.1:9002", "-"),  # the client gave up waiting
    ]
    metrics = _count(tmp_path, [_line(log_format, **request) for request in canary])
    assert _requests(metrics, version="200", route="canary", outcome="answered") == 1
    assert _requests(metrics, version="200", outcome="server_error") == 3
    assert {
        dict(labels)["status"]
        for (name, labels), value in metrics.items()
        if name == "taxi_nginx_requests_total" and ("outcome", "server_error") in labels and value
    } == {"500", "502", "504"}
    assert _requests(metrics, version="200", status="499", outcome="gave_up") == 1
    # What the client waited, per outcome: the 504's minute is past the last finite bucket.
    key = ("taxi_nginx_request_duration_seconds_bucket", (("le", "60"), ("outcome", "server_error"),
                                                          ("route", "canary"), ("version", "200")))  # fmt: skip
    assert metrics.get(key) == 2  # the 500 and the 502 (timed 0.000 s); the 504 took longer than 60 s
    for (name, labels), count in metrics.items():  # every request timed is in a bucket
        if name == "taxi_nginx_request_duration_seconds_count":
            assert (
                metrics[name.replace("_count", "_bucket"), tuple(sorted(labels + (("le", "+Inf"),)))] == count
            )


def test_a_clients_4xx_is_a_client_error_never_a_server_fault(tmp_path):
    log_format, _ = _log_format()
    storm = [
        _request("200", "canary", "400", "0.001", "127.0.0.1:9002", "400", uri="/v1/models/taxi/labels/canary:predict"),
        _request("200", "canary", "413", "0.001", "127.0.0.1:9002", "413"),
        # A client that closed its connection after the server had answered: its own doing.
        _request("200", "canary", "499", "0.002", "127.0.0.1:9002", "200"),
    ]  # fmt: skip
    metrics = _count(tmp_path, [_line(log_format, **request) for request in storm])
    assert _requests(metrics, version="200", outcome="client_error") == 3
    assert _requests(metrics, outcome="server_error") == _requests(metrics, outcome="gave_up") == 0


def test_a_retried_request_is_one_request_and_each_attempt_is_counted(tmp_path):
    log_format, _ = _log_format()
    retried = _request("100", "stable", "200", "0.005", "127.0.0.1:9001, 127.0.0.1:9003", "502, 200")
    metrics = _count(tmp_path, [_line(log_format, **retried)])
    assert _requests(metrics, version="100", route="stable", status="200", outcome="answered") == 1
    attempts = {
        dict(labels)["upstream"]: (dict(labels)["upstream_status"], value)
        for (name, labels), value in metrics.items()
        if name == "taxi_nginx_upstream_attempts_total"
    }
    assert attempts == {"127.0.0.1:9001": ("502", 1), "127.0.0.1:9003": ("200", 1)}


@pytest.mark.parametrize("mode, route", [(traffic.CANARY, "canary"), (traffic.BLUE_GREEN, "previous")])
def test_only_predictions_are_counted_and_the_route_follows_the_mode(tmp_path, mode, route):
    log_format, _ = _log_format(mode)
    lines = [
        _line(log_format, **_request("200", route, "200", "0.002", "127.0.0.1:9002", "200")),
        _line(log_format, **_request("100", "stable", "200", "0.001", "127.0.0.1:9001", "200", uri="/v1/models/taxi")),
    ]  # fmt: skip
    metrics = _count(tmp_path, lines)
    assert _requests(metrics, version="200", route=route) == 1
    assert _requests(metrics, version="100") == 0  # a status request is not a prediction
    conf = traffic.render(
        traffic.Traffic(mode, traffic.Backend("100", 9001), traffic.Backend("200", 9002), canary_percent=10),
        port=9000,
        run_dir="/run/stack",
    )
    assert re.search(rf"\bv200 {route};", conf) and re.search(r"\bv100 stable;", conf)


def test_a_versions_fault_series_exist_from_its_first_request(tmp_path):
    """Prometheus's increase() cannot count a series' first sample: a candidate's first 502s must land in a
    series that was already there, at 0."""
    log_format, _ = _log_format()
    metrics = _count(
        tmp_path, [_line(log_format, **_request("200", "canary", "200", "0.002", "127.0.0.1:9002", "200"))]
    )
    zeros = {
        (dict(labels)["status"], dict(labels)["outcome"])
        for (name, labels), value in metrics.items()
        if name == "taxi_nginx_requests_total" and value == 0
    }
    assert zeros == {
        ("499", "gave_up"),
        ("500", "server_error"),
        ("502", "server_error"),
        ("503", "server_error"),
        ("504", "server_error"),
    }
