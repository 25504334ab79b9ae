"""`make bench-serve`: the serving stack's latency and throughput against the in-process floor.

On the production model of an output folder (run `make run` first), in a stack of its own on free
loopback ports, in one invocation:
- **floor**: the SavedModel's `raw_features` signature called in this process (eager);
- **model_call**: the same model called as the server calls it (a session, as TF Serving loads it), back
  to back; and **model_call_paced**, the same call made RATE times a second, as the load makes it (a
  call every 5 ms finds the processor's caches cold: it costs 2-3 times the back-to-back call here), with
  its CPU per call;
- **direct**: open-loop load straight to a model server;
- **nginx**: the same load through nginx (the stack's front door);
- **shadow**: through nginx with every request mirrored to a second server;
- **nginx_one_stable_process_killed**: through nginx, one of stable's processes killed (-9) as it starts;
- **batched**: requests of BATCH trips on four connections, each sending again as soon as it is answered,
  through nginx and direct, against the floor's batch called back to back;
- **ceiling**: the highest single-trip rate through nginx with p99 under 10 ms and no errors (rates tried in
  turn, a few seconds each, until one fails);
- with `--baseline-source DIR` (another checkout, e.g. `git worktree add /tmp/base main`), **direct_baseline**:
  the same load straight to a model server run from DIR's code, alternating with **direct** in each round,
  so a change to the server is measured before/after in one invocation; and **batched_direct_baseline**,
  the batched requests straight to that server, alternating with **batched_direct**.

Open loop: each request is sent when due (RATE a second), not after the previous answer, and its latency
counts from when it was due. The variants alternate, round after round, so the machine's drift in speed
falls on all of them. Reports p50, p99 and max latency, throughput, errors and CPU milliseconds per
request of the stack's processes, and the machine's load average while it ran; differences and ratios against the named baselines (the in-process floor,
stable alone through nginx), and writes `serve_bench.json`. Shadows: the same model, and ones slowed to
50 ms and 500 ms, to show what the mirror's timeout bounds.

    python -m benchmarks.serve --output-dir outputs --rate 200 --seconds 20
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from clients import load
from config import folders
from config import serving as serving_config
from registry import versions
from serving import processes, releases, request_contract, stack

TRIP = dict(request_contract.EXAMPLE_TRIP, pickup_community_area=8)
PREDICT = f"/v1/models/{serving_config.SERVING_MODEL_NAME}:predict"


def _percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)
    if not ordered:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {
        "p50_ms": round(pick(0.5), 3),
        "p99_ms": round(pick(0.99), 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def floor(model_dir: Path, batch: int, calls: int, rate: float) -> dict:
    """In this process, single-trip latency and batched throughput of the model alone, called two ways:
    - `floor`: the raw-features signature of `tf.saved_model.load` (eager), the usual in-process call;
    - `model_call`: the server's own call (`LoadedModel`, the SavedModel in a session, as TF Serving
      loads it), so that what the stack adds on top of its model is seen apart from the model's cost;
    and `model_call_paced`: that call's single-trip latency and CPU (ms) when made `rate` times a second,
    as the open-loop load makes it, the like-for-like baseline of the stack's CPU per request.
    """
    import tensorflow as tf

    from models.signatures import MISSING, PREDICTION, RAW_FEATURES_SIGNATURE
    from serving.model import LoadedModel
    from serving.request_contract import Batch

    signature = tf.saved_model.load(str(model_dir)).signatures[RAW_FEATURES_SIGNATURE]
    dtypes = {name: spec.dtype for name, spec in signature.structured_input_signature[1].items()}
    served = LoadedModel(model_dir)

    def eager(size: int) -> None:
        tensors = {n: tf.constant([TRIP.get(n, MISSING[d])] * size, dtype=d) for n, d in dtypes.items()}
        signature(**tensors)[PREDICTION].numpy()

    def session(size: int) -> None:
        columns = {name: [TRIP.get(name)] * size for name in dtypes}
        served.predict(Batch(columns=columns, size=size, missing={}, out_of_domain={}))

    def timed(call, size: int) -> float:
        started = time.perf_counter()
        call(size)
        return time.perf_counter() - started

    report = {}
    for name, call in (("floor", eager), ("model_call", session)):
        for _ in range(20):
            call(1)
        single = [timed(call, 1) for _ in range(calls)]
        batched = [timed(call, batch) for _ in range(max(20, calls // 20))]
        report[name] = {
            **_percentiles(single),
            "batched_trips_per_second": round(batch / statistics.median(batched), 1),
        }
    report["model_call_paced"] = _paced(lambda: session(1), calls, rate)
    return report


def _paced(call, calls: int, rate: float) -> dict:
    """`call`'s latency percentiles and CPU ms per call (this thread's), one call every 1/`rate` s."""
    latencies, cpu_seconds = [], 0.0
    due = time.perf_counter()
    for _ in range(calls):
        due += 1 / rate
        time.sleep(max(0.0, due - time.perf_counter()))
        started, cpu_started = time.perf_counter(), time.thread_time()
        call()
        cpu_seconds += time.thread_time() - cpu_started
        latencies.append(time.perf_counter() - started)
    return {**_percentiles(latencies), "cpu_ms": round(1000 * cpu_seconds / calls, 3)}


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            for member in [process, *process.children(recursive=True)]:
                times = member.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def measure(url: str, pids: list[int], rate: float, seconds: float, body: dict) -> dict:
    """One open-loop run: raw latencies (s) of the answered requests, errors, throughput, CPU."""
    cpu_before = _cpu_seconds(pids)
    result = load.open_loop(url, PREDICT, body, rate, seconds)
    return {**result, "cpu_seconds": _cpu_seconds(pids) - cpu_before}


def merged(runs: list[dict]) -> dict:
    """The runs of one variant across rounds, as one measurement."""
    sent = sum(r["sent"] for r in runs)
    return {
        **_percentiles([latency for r in runs for latency in r["latencies"]]),
        "throughput_per_second": round(sum(r["throughput"] for r in runs) / len(runs), 1),
        "errors": sum(r["errors"] for r in runs),
        "sent": sent,
        "cpu_ms_per_request": round(1000 * sum(r["cpu_seconds"] for r in runs) / max(1, sent), 3),
    }


SETTLE_SECONDS = 3 * serving_config.REQUEST_LOG_FLUSH_SECONDS
KILLED = "nginx_one_stable_process_killed"

# Batched requests in flight at once: enough to keep a server busy while others are on the wire or being
# read, as a throughput test must (one request at a time measures the round trip, and idles the server).
BATCHED_CONNECTIONS = 4


def batched(url: str, pids: list[int], batch: int, seconds: float) -> dict:
    """One closed-loop run of `batch`-trip requests: trips a second, errors, and the CPU of `pids` per
    request, counted until the server has written the run's request-log rows (one flush later)."""
    cpu_before = _cpu_seconds(pids)
    result = load.closed_loop(url, PREDICT, {"instances": [TRIP] * batch}, BATCHED_CONNECTIONS, seconds)
    time.sleep(serving_config.REQUEST_LOG_FLUSH_SECONDS + 0.2)
    return {
        "trips_per_second": round(batch * result["requests_per_second"], 1),
        "errors": result["errors"],
        "cpu_seconds": _cpu_seconds(pids) - cpu_before,
        "answered": result["answered"],
    }


# Shadow candidates: the same model, and the same model made slower than nginx's mirror timeout allows
# and than it does not (benchmarks/model_variants.slow), to measure what a slow shadow costs stable's clients.
SHADOWS = {"shadow": None, "shadow_slow_50ms": 0.05, "shadow_slow_500ms": 0.5}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output-dir", default="outputs", help="The output folder whose production model to serve."
    )
    parser.add_argument("--work-dir", default="build/bench-serve")
    parser.add_argument("--rate", type=float, default=200.0, help="Requests a second (open loop).")
    parser.add_argument("--seconds", type=float, default=20.0, help="Per variant, over all rounds.")
    parser.add_argument("--rounds", type=int, default=3, help="Variants alternate, round after round.")
    parser.add_argument("--batch", type=int, default=100, help="Trips per batched request.")
    parser.add_argument(
        "--baseline-source", type=Path, help="A checkout whose model server is measured beside this one's."
    )
    args = parser.parse_args(argv)
    production = production_of(args.output_dir)
    if production is None:
        return 2
    work = Path(args.work_dir).resolve()
    settings, shadow_versions = _workspace(work, production)
    paths = stack.StackPaths.of(settings)
    report = {"rate": args.rate, "seconds": args.seconds, "rounds": args.rounds, "batch": args.batch,
              "version": production.name, "cpus": psutil.cpu_count()}  # fmt: skip
    print(f"Floor: {production} in this process ...", flush=True)
    floors = [floor(production, args.batch, calls=1000, rate=args.rate)]
    load_before = os.getloadavg()[0]
    runs, batches, report["ceiling"] = _rounds(paths, production.name, shadow_versions, args)
    report["load_average_1min"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    floors.append(floor(production, args.batch, calls=1000, rate=args.rate))
    for name in ("floor", "model_call", "model_call_paced"):
        report[name] = {
            key: round(statistics.mean(f[name][key] for f in floors), 3)
            for key in floors[0][name]
            if key in ("p50_ms", "p99_ms", "batched_trips_per_second", "cpu_ms")
        }
    for name, measured in runs.items():
        report[name] = merged(measured)
    for name, measured in batches.items():
        report[name] = {
            "trips_per_second": round(statistics.mean(m["trips_per_second"] for m in measured), 1),
            "errors": sum(m["errors"] for m in measured),
            "cpu_ms_per_request": round(
                1000 * sum(m["cpu_seconds"] for m in measured) / max(1, sum(m["answered"] for m in measured)),
                3,
            ),
        }
    report["against_baselines"] = _against_baselines(report)
    if "direct_baseline" in report:
        report["direct_over_direct_baseline"] = {
            key: round(report["direct"][key] / report["direct_baseline"][key], 3)
            for key in ("cpu_ms_per_request", "p50_ms", "p99_ms")
        }
        report["batched_direct_over_batched_direct_baseline"] = {
            key: round(report["batched_direct"][key] / report["batched_direct_baseline"][key], 3)
            for key in ("trips_per_second", "cpu_ms_per_request")
        }
    (work / "serve_bench.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


def production_of(output_dir: str) -> Path | None:
    """The model in production in `output_dir`'s serving directory; None, with the error printed, if none."""
    serving_dir = folders.Settings.resolve(output_dir).serving_model_dir
    production = versions.production_path(serving_dir)
    if production is None:
        print(f"error: {serving_dir} holds no pushed model: run `make run` first", file=sys.stderr)
    return production


def _workspace(work: Path, production: Path) -> tuple[folders.Settings, dict[str, str]]:
    """A fresh output folder under `work` serving `production`, and the version of each shadow candidate."""
    from benchmarks import model_variants

    shutil.rmtree(work, ignore_errors=True)
    settings = folders.Settings(output_dir=work, data_root=None)
    serving_dir = settings.serving_model_dir
    versions.write_version(serving_dir, production, production.name)
    shadow_versions = {}
    for offset, (name, delay) in enumerate(SHADOWS.items(), start=1):
        version = str(int(production.name) + offset)
        if delay is None:
            versions.write_version(serving_dir, production, version)
        else:  # built beside, then written as the Pusher writes: whole, with its completion record
            variant = model_variants.slow(production, work / "variants" / version, seconds=delay)
            versions.write_version(serving_dir, variant, version)
        shadow_versions[name] = version
    return settings, shadow_versions


def _rounds(
    paths: stack.StackPaths, version: str, shadow_versions: dict[str, str], args: argparse.Namespace
) -> tuple[dict[str, list[dict]], dict[str, list[dict]], dict]:
    """Starts the stack on `version`, measures every variant once a round, then the ceiling, stops it;
    returns each variant's measurements (single-trip runs, and batched) and the ceiling's. Over 80 lines:
    the rounds read best as one sequence."""
    single = {"instances": [TRIP]}
    per_round = args.seconds / args.rounds
    state = stack.start(paths, version, processes.free_port(), processes.free_port())
    runs: dict[str, list[dict]] = {name: [] for name in ("direct", "nginx", *SHADOWS)}
    batches: dict[str, list[dict]] = {"batched_nginx": [], "batched_direct": []}
    baseline = None
    try:
        if args.baseline_source:
            baseline = _start_baseline_server(paths, version, args.baseline_source)
            runs["direct_baseline"], batches["batched_direct_baseline"] = [], []
        nginx_url, direct_url = (
            f"http://127.0.0.1:{state['port']}",
            f"http://127.0.0.1:{state['stable']['port']}",
        )
        stable_pids = stack.server_pids(state["stable"])  # nginx spreads requests over them
        direct_pids = [state["stable"]["pid"]]  # the one at direct_url, as the baseline server is one
        nginx_pids = [int((paths.run / "nginx.pid").read_text())]
        for round_number in range(1, args.rounds + 1):
            print(
                f"round {round_number} of {args.rounds}: {args.rate:g} requests/s, {per_round:g} s per variant",
                flush=True,
            )
            pair = [("direct", direct_url, direct_pids)]
            if baseline:  # before and after, in turn, the first of the two alternating
                pair.append(("direct_baseline", baseline["url"], [baseline["pid"]]))
            for name, url, pids in pair[:: 1 if round_number % 2 else -1]:
                runs[name].append(measure(url, pids, args.rate, per_round, single))
            runs["nginx"].append(measure(nginx_url, stable_pids + nginx_pids, args.rate, per_round, single))
            for name, shadow_version in shadow_versions.items():
                state = releases.shadow(paths, shadow_version)
                pids = stable_pids + nginx_pids + stack.server_pids(state["candidate"])
                runs[name].append(measure(nginx_url, pids, args.rate, per_round, single))
                releases.rollback(paths, "benchmark")
                versions.undo_rollback(paths.serving_dir, shadow_version)
            batches["batched_nginx"].append(
                batched(nginx_url, stable_pids + nginx_pids, args.batch, per_round)
            )
            batched_pair = [("batched_direct", direct_url, direct_pids)]
            if baseline:
                batched_pair.append(("batched_direct_baseline", baseline["url"], [baseline["pid"]]))
            for name, url, pids in batched_pair[:: 1 if round_number % 2 else -1]:
                batches[name].append(batched(url, pids, args.batch, per_round))
            # The server writes the burst's request-log rows (about 25,000 a second of it) at its next
            # flushes; the next round's latencies are measured once that is done.
            time.sleep(SETTLE_SECONDS)
        found_ceiling = ceiling(nginx_url, stable_pids + nginx_pids)
        # Last, as it changes the stack: one of stable's processes killed (-9) as a run starts, what the
        # clients see while nginx retries on the other and the supervisor replaces it.
        os.kill(stable_pids[0], signal.SIGKILL)
        runs[KILLED] = [measure(nginx_url, stable_pids[1:] + nginx_pids, args.rate, per_round, single)]
    finally:
        if baseline:
            processes.stop(baseline["pid"])
        stack.stop(paths)
    return runs, batches, found_ceiling


# The ceiling: single-trip rates tried in turn through nginx, each for CEILING_STEP_SECONDS, until one has
# a p99 of CEILING_P99_MS or more or an error. The load generator is one thread: near 2,000 a second it
# takes a core of its own, so the ceiling is the stack's and the generator's together.
CEILING_P99_MS = 10.0
CEILING_RATES = (200, 300, 400, 500, 600, 800, 1000, 1250, 1500, 2000)
CEILING_STEP_SECONDS = 3.0


def ceiling(url: str, pids: list[int]) -> dict:
    """The highest rate of CEILING_RATES with p99 under CEILING_P99_MS and no errors, and each rate tried."""
    tried, highest = [], None
    for rate in CEILING_RATES:
        run = measure(url, pids, rate, CEILING_STEP_SECONDS, {"instances": [TRIP]})
        p99 = _percentiles(run["latencies"])["p99_ms"]
        tried.append({"rate": rate, "p99_ms": p99, "errors": run["errors"],
                      "throughput_per_second": round(run["throughput"], 1)})  # fmt: skip
        if run["errors"] or p99 is None or p99 >= CEILING_P99_MS:
            break
        highest = rate
    return {f"highest_rate_p99_under_{CEILING_P99_MS:g}_ms": highest, "tried": tried}


def _start_baseline_server(paths: stack.StackPaths, version: str, source: Path) -> dict:
    """A model server for `version` run from the code in `source` (its own request log); its url and pid."""
    port = processes.free_port()
    log_dir = paths.root / "baseline_request_log"
    command = [sys.executable, "-m", "serving.server", "--serving-dir", str(paths.serving_dir), "--version",
               version, "--label=stable", "--request-log", str(log_dir), "--port", str(port)]  # fmt: skip
    paths.run.mkdir(parents=True, exist_ok=True)
    with (paths.run / "baseline-server.log").open("ab") as output:
        server = subprocess.Popen(
            command, cwd=source, env=dict(os.environ, PYTHONPATH=str(source.resolve())), stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + serving_config.SERVING_START_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            if processes.get_json(f"{url}/ready")[0] == 200:
                return {"url": url, "pid": server.pid}
        time.sleep(0.2)
    processes.stop(server.pid)
    raise RuntimeError(
        f"the baseline server from {source} did not get ready: {paths.run / 'baseline-server.log'}"
    )


def _against_baselines(report: dict) -> dict:
    """Differences and ratios of the variants against the named baselines."""
    floor_p50, nginx = report["floor"]["p50_ms"], report["nginx"]
    return {
        "baseline": "floor: the raw_features signature called in this process (eager); model_call: the "
        "server's own session call in this process, back to back; model_call_paced: the same at the load's "
        "rate; nginx: stable alone",
        "nginx_p50_minus_floor_ms": round(nginx["p50_ms"] - floor_p50, 3),
        "direct_p50_minus_floor_ms": round(report["direct"]["p50_ms"] - floor_p50, 3),
        "nginx_p50_minus_model_call_ms": round(nginx["p50_ms"] - report["model_call"]["p50_ms"], 3),
        "nginx_p99_minus_model_call_ms": round(nginx["p99_ms"] - report["model_call"]["p99_ms"], 3),
        "nginx_cpu_per_request_over_model_call": round(
            nginx["cpu_ms_per_request"] / report["model_call"]["p50_ms"], 2
        ),
        # The same two against the model call made at the load's rate, as the servers make it.
        "nginx_p99_minus_paced_model_call_ms": round(
            nginx["p99_ms"] - report["model_call_paced"]["p99_ms"], 3
        ),
        "nginx_cpu_per_request_over_paced_model_call": round(
            nginx["cpu_ms_per_request"] / report["model_call_paced"]["cpu_ms"], 2
        ),
        "batched_nginx_over_model_call": round(
            report["batched_nginx"]["trips_per_second"] / report["model_call"]["batched_trips_per_second"], 3
        ),
        f"{KILLED}_throughput_over_nginx": round(
            report[KILLED]["throughput_per_second"] / nginx["throughput_per_second"], 3
        ),
        **{
            f"{name}_p50_minus_nginx_ms": round(report[name]["p50_ms"] - nginx["p50_ms"], 3)
            for name in SHADOWS
        },
        **{f"{name}_p99_over_nginx": round(report[name]["p99_ms"] / nginx["p99_ms"], 2) for name in SHADOWS},
        "batched_nginx_over_floor": round(
            report["batched_nginx"]["trips_per_second"] / report["floor"]["batched_trips_per_second"], 3
        ),
        "batched_direct_over_floor": round(
            report["batched_direct"]["trips_per_second"] / report["floor"]["batched_trips_per_second"], 3
        ),
    }


if __name__ == "__main__":
    sys.exit(main())
