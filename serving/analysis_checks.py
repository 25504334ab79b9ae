"""The canary analysis's checks (serving/analysis.py runs them every interval): the candidate's figures over
the last interval, read from Prometheus, each judged against its bound, as Flagger's metric checks are.

What its clients saw, from nginx's access log (mtail's `taxi_nginx_*`, serving/access_log.py):
- `requests`: those answered, those that failed on the server's side (5xx: a failing model, a server
  that is gone or reset the connection, nginx's timeout) and those whose client gave up before any answer
  (499). A client's 4xx says nothing about the version: it is set aside, and reported as `client_errors`;
- `error_rate`: the server faults and the clients that gave up, among `requests`;
- `p99_seconds`: the 99th percentile of what those clients waited.
What the candidate's own server counted (serving/metrics.py), its 4xx and the shadow's copies left out:
`server_error_rate` and `server_p99_seconds` (its latency histogram has no status: 4xx are in it).

A check fails when its figure is out of bounds, when fewer than `min_requests` requests reached the
candidate, when there is no figure (Flagger's "no values found": no traffic, or a server Prometheus cannot
scrape), or when Prometheus could not answer (`MetricsUnavailable`).
"""

import dataclasses

from config import serving as serving_config
from serving import prometheus

SERVER_FAULTS = ("server_error", "gave_up")  # the mtail program's outcomes that count against a version
CLIENT_ERROR = "client_error"


class MetricsUnavailable(Exception):
    """Prometheus did not answer a query, or answered an error: every check of the interval fails."""


@dataclasses.dataclass(frozen=True)
class Bounds:
    """What one check looks at (the last `interval_seconds`) and what it allows."""

    interval_seconds: float = serving_config.CANARY_INTERVAL_SECONDS
    max_error_rate: float = serving_config.CANARY_MAX_ERROR_RATE
    max_p99_seconds: float = serving_config.CANARY_MAX_P99_SECONDS
    min_requests: int = serving_config.CANARY_MIN_REQUESTS
    query_timeout_seconds: float = serving_config.CANARY_QUERY_TIMEOUT_SECONDS

    @property
    def first_check_seconds(self) -> float:
        """How long after a candidate starts its first check waits: at least an interval, and the time
        Prometheus takes to have two samples of a new server in a window (it finds the new target within
        a scrape interval, scrapes it within the next, and a rate needs a second sample)."""
        return max(self.interval_seconds, 4 * serving_config.PROMETHEUS_SCRAPE_SECONDS)

    @property
    def window(self) -> str:
        """The interval as a PromQL range, at least two scrapes long (a rate needs two samples)."""
        return f"{max(round(self.interval_seconds), 2 * serving_config.PROMETHEUS_SCRAPE_SECONDS)}s"


def measure(prometheus_url: str, version: str, bounds: Bounds) -> dict:
    """The candidate's figures over the last interval (see the module's docstring); a figure without data
    is None. Raises MetricsUnavailable naming the query that failed."""

    def ask(expression: str) -> list[dict]:
        try:
            return prometheus.query(prometheus_url, expression, timeout=bounds.query_timeout_seconds)
        except (OSError, ValueError, RuntimeError) as error:
            raise MetricsUnavailable(
                f"Prometheus at {prometheus_url} failed `{expression}`: {error}"
            ) from error

    selector, window = f'version="{version}"', bounds.window
    at_nginx = ask(f"sum by (outcome, status) (increase(taxi_nginx_requests_total{{{selector}}}[{window}]))")
    nginx_p99 = ask(
        f"histogram_quantile(0.99, sum by (le) (rate(taxi_nginx_request_duration_seconds_bucket"
        f'{{{selector},outcome!="{CLIENT_ERROR}"}}[{window}])))'
    )
    in_server = ask(
        f'sum by (status) (increase(taxi_requests_total{{{selector},route!="{serving_config.SHADOW_ROUTE}"}}[{window}]))'
    )
    server_p99 = ask(
        f"histogram_quantile(0.99, sum by (le) (rate(taxi_request_duration_seconds_bucket"
        f'{{{selector},route!="{serving_config.SHADOW_ROUTE}"}}[{window}])))'
    )
    return {**_nginx_figures(at_nginx, nginx_p99), **_server_figures(in_server, server_p99)}


def _value(sample: dict) -> float | None:
    value = float(sample["value"][1])
    return None if value != value else value  # NaN: no data in the window


def _quantile(result: list[dict]) -> float | None:
    value = _value(result[0]) if result else None
    return round(value, 4) if value is not None else None


def _nginx_figures(by_outcome: list[dict], p99: list[dict]) -> dict:
    counts = [(s["metric"].get("outcome"), s["metric"].get("status"), _value(s) or 0.0) for s in by_outcome]
    faults: dict[str, float] = {}
    for outcome, status, count in counts:
        if outcome in SERVER_FAULTS and count:
            faults[status] = round(faults.get(status, 0.0) + count, 1)
    requests = sum(count for outcome, _, count in counts if outcome != CLIENT_ERROR)
    return {
        "requests": round(requests, 1),
        "client_errors": round(sum(count for outcome, _, count in counts if outcome == CLIENT_ERROR), 1),
        "faults": faults,  # {status: requests}, 499 for the clients that gave up
        "error_rate": round(sum(faults.values()) / requests, 4) if requests else None,
        "p99_seconds": _quantile(p99),
    }


def _server_figures(by_status: list[dict], p99: list[dict]) -> dict:
    counts = [(s["metric"].get("status", ""), _value(s) or 0.0) for s in by_status]
    requests = sum(count for status, count in counts if not status.startswith("4"))
    errors = sum(count for status, count in counts if status.startswith("5"))
    return {
        "server_requests": round(requests, 1),
        "server_error_rate": round(errors / requests, 4) if requests else None,
        "server_p99_seconds": _quantile(p99),
    }


def judge(figures: dict, bounds: Bounds) -> list[str]:
    """The checks `figures` fail, each a phrase saying what and by how much; [] when all pass."""
    failed = []
    if figures["requests"] < bounds.min_requests:
        failed.append(
            f"{figures['requests']:g} requests reached it at nginx in the interval, fewer than the "
            f"{bounds.min_requests} a check needs"
        )
    faults = ", ".join(f"{status}: {count:g}" for status, count in sorted(figures["faults"].items()))
    for name, value, bound, detail in (
        (
            "error rate at nginx",
            figures["error_rate"],
            bounds.max_error_rate,
            f" ({faults})" if faults else "",
        ),
        ("p99 at nginx", figures["p99_seconds"], bounds.max_p99_seconds, " s"),
        ("error rate in its server", figures["server_error_rate"], bounds.max_error_rate, ""),
        ("p99 in its server", figures["server_p99_seconds"], bounds.max_p99_seconds, " s"),
    ):
        if value is None:
            failed.append(f"{name}: no data")
        elif value > bound:
            failed.append(f"{name} {value:g} above {bound:g}{detail}")
    return failed
