"""The canary checks' judgement on figures as Prometheus returns them: a check without enough requests or
without data fails, server faults count against the candidate and a client's 4xx never does. (The checks
on the real stack, with the decisions they lead to: tests/e2e/test_canary_analysis.py.)"""

from serving import analysis_checks
from serving.analysis_checks import Bounds

BOUNDS = Bounds(interval_seconds=10, max_error_rate=0.01, max_p99_seconds=0.05, min_requests=10)


def _sample(value: float, **labels) -> dict:
    return {"metric": labels, "value": [1_796_000_000.0, str(value)]}


def _figures(at_nginx: list[dict], in_server: list[dict] | None = None, nginx_p99: float | None = 0.008,
             server_p99: float | None = 0.006) -> dict:  # fmt: skip
    """The figures of these counts at nginx and in the server (by default, what nginx saw answered)."""
    if in_server is None:
        in_server = [_sample(s["value"][1], status=s["metric"]["status"]) for s in at_nginx]
    return {
        **analysis_checks._nginx_figures(at_nginx, [] if nginx_p99 is None else [_sample(nginx_p99)]),
        **analysis_checks._server_figures(in_server, [] if server_p99 is None else [_sample(server_p99)]),
    }


def test_a_healthy_candidate_passes_every_check():
    figures = _figures([_sample(200, outcome="answered", status="200")])
    assert figures["requests"] == 200 and figures["error_rate"] == 0 and figures["server_error_rate"] == 0
    assert analysis_checks.judge(figures, BOUNDS) == []


def test_client_errors_are_set_aside_however_many_there_are():
    figures = _figures(
        [_sample(50, outcome="answered", status="200"), _sample(5000, outcome="client_error", status="400")]
    )
    assert (figures["requests"], figures["client_errors"], figures["error_rate"]) == (50, 5000, 0)
    assert analysis_checks.judge(figures, BOUNDS) == []


def test_server_faults_and_clients_that_gave_up_count_against_the_candidate():
    at_nginx = [
        _sample(90, outcome="answered", status="200"),
        _sample(6, outcome="server_error", status="502"),
        _sample(4, outcome="gave_up", status="499"),
    ]
    # The server never saw the requests nginx could not hand it, nor knew their clients had given up.
    figures = _figures(at_nginx, in_server=[_sample(90, status="200"), _sample(10, status="400")])
    assert figures["faults"] == {"502": 6, "499": 4} and figures["error_rate"] == 0.1
    assert figures["server_error_rate"] == 0
    assert analysis_checks.judge(figures, BOUNDS) == ["error rate at nginx 0.1 above 0.01 (499: 4, 502: 6)"]


def test_a_failing_model_fails_in_its_server_as_at_nginx():
    at_nginx = [
        _sample(80, outcome="answered", status="200"),
        _sample(20, outcome="server_error", status="500"),
    ]
    assert analysis_checks.judge(_figures(at_nginx), BOUNDS) == [
        "error rate at nginx 0.2 above 0.01 (500: 20)",
        "error rate in its server 0.2 above 0.01",
    ]


def test_too_few_requests_fail_a_check_even_when_they_all_succeeded():
    figures = _figures([_sample(3, outcome="answered", status="200")])
    assert analysis_checks.judge(figures, BOUNDS) == [
        "3 requests reached it at nginx in the interval, fewer than the 10 a check needs"
    ]


def test_no_data_fails_every_check():
    figures = _figures([], nginx_p99=None, server_p99=None)
    assert analysis_checks.judge(figures, BOUNDS) == [
        "0 requests reached it at nginx in the interval, fewer than the 10 a check needs",
        "error rate at nginx: no data",
        "p99 at nginx: no data",
        "error rate in its server: no data",
        "p99 in its server: no data",
    ]


def test_a_slow_candidate_fails_on_its_p99():
    figures = _figures([_sample(100, outcome="answered", status="200")], nginx_p99=0.21, server_p99=0.2)
    assert analysis_checks.judge(figures, BOUNDS) == [
        "p99 at nginx 0.21 above 0.05 s",
        "p99 in its server 0.2 above 0.05 s",
    ]


def test_a_check_looks_at_least_two_scrapes_back():
    assert Bounds(interval_seconds=10).window == "10s"
    assert Bounds(interval_seconds=1).window == "4s"  # a rate needs two of the 2 s scrapes
