"""Prometheus for the local stack: its configuration, the servers it scrapes, and queries of it.

The servers to scrape are a file (`targets.json`, Prometheus's file-based discovery), rewritten whenever
the stack changes, so Prometheus never needs a restart. The rules are the files in serving/prometheus/,
the same ones `promtool test rules` checks.
"""

import json
import os
import signal
import urllib.parse
import urllib.request
from pathlib import Path

from config import serving as serving_config
from serving import processes

RULES_DIR = Path(__file__).parent / "prometheus"
RULE_FILES = sorted(RULES_DIR.glob("*_rules.yml"))
JOB = "taxi-model-servers"


def write_targets(root: Path, slots: list[dict]) -> None:
    """The processes Prometheus scrapes, each labelled with its role (stable, canary, an attached
    service's name)."""
    targets = [
        {"targets": [f"127.0.0.1:{slot['port']}"], "labels": {"role": slot.get("label", "stable")}}
        for slot in slots
    ]
    temporary = root / ".targets.json.tmp"
    temporary.write_text(json.dumps(targets, indent=2))
    temporary.replace(root / "targets.json")


def write_config(root: Path, extra_rule_files: list[str] = ()) -> Path:
    """prometheus.yml: the stack's rules and an attached service's (`extra_rule_files`)."""
    interval = f"{serving_config.PROMETHEUS_SCRAPE_SECONDS}s"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in RULE_FILES] + [str(path) for path in extra_rule_files],
        "scrape_configs": [
            {
                "job_name": JOB,
                "file_sd_configs": [{"files": [str(root / "targets.json")], "refresh_interval": interval}],
            }
        ],
    }
    path = root / "prometheus.yml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def reload(root: Path, pid: int, extra_rule_files: list[str]) -> None:
    """Rewrites the configuration with these extra rule files and has Prometheus read it (SIGHUP)."""
    write_config(root, extra_rule_files)
    os.kill(pid, signal.SIGHUP)


def start(root: Path, port: int) -> dict:
    """Starts Prometheus on 127.0.0.1:`port` with its data under `root`; returns its state slot."""
    config = write_config(root)
    command = [
        "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={root / 'prometheus-data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=2d",
    ]
    url = f"http://127.0.0.1:{port}"
    log = root / "run" / "prometheus.log"
    pid = processes.spawn(
        command, log, "Prometheus", f"{url}/-/ready", serving_config.PROMETHEUS_START_SECONDS
    )
    return {"pid": pid, "port": port, "url": url}


def query(url: str, expression: str, at: float | None = None, timeout: float = 5) -> list[dict]:
    """An instant query's result vector: [{'metric': {...}, 'value': [time, 'number']}, ...]."""
    parameters = {"query": expression, **({"time": f"{at:.3f}"} if at else {})}
    return _api(url, "query", parameters, timeout=timeout)


def _api(url: str, endpoint: str, parameters: dict, timeout: float) -> list[dict]:
    with urllib.request.urlopen(
        f"{url}/api/v1/{endpoint}?{urllib.parse.urlencode(parameters)}", timeout=timeout
    ) as response:
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus {endpoint} failed: {parameters['query']}: {body}")
    return body["data"]["result"]


def scalar(url: str, expression: str, timeout: float = 5) -> float | None:
    """The query's single value, or None when there is none (no traffic, no data yet)."""
    result = query(url, expression, timeout=timeout)
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if value != value else value  # NaN: a ratio of zero requests


def alerts(url: str) -> list[dict]:
    """The alerts pending or firing: [{'labels': {...}, 'annotations': {...}, 'state': ..., 'activeAt': ...}]."""
    with urllib.request.urlopen(f"{url}/api/v1/alerts", timeout=5) as response:
        body = json.loads(response.read())
    return body.get("data", {}).get("alerts", [])


def query_range(url: str, expression: str, start: float, end: float, step: float) -> list[dict]:
    """A range query's matrix: [{'metric': {...}, 'values': [[time, 'number'], ...]}, ...]."""
    parameters = {"query": expression, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    return _api(url, "query_range", parameters, timeout=10)
