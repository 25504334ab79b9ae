"""ServingCheck: the candidate loaded and asked the way serving will, before the Pusher may push it.

It stands where TFX's InfraValidator stands, and emits the same `InfraBlessing` artifact (the `blessed`
custom property and an `INFRA_BLESSED` or `INFRA_NOT_BLESSED` file), which the Pusher requires. TFX's own
starts a TF Serving image, which cannot be pulled here; this one starts the model server that serves the
model (`python -m serving.server`, serving/server.py) in a process of its own, on loopback:

1. the candidate is written as a whole version into a scratch serving directory, as the Pusher writes it,
   and the server must report ready within the load timeout;
2. held-out trips (the Evaluator's sample) are sent through both signatures, raw-feature rows and
   serialized tf.Examples, and every answer must match the model's own prediction for that trip, computed
   in this process by `serving_default` on the same serialized example, as TFMA computes it;
3. one request per trip gives the p99 latency, and the server's peak resident memory is read from the
   kernel (`VmHWM`); each must be within its budget (config/pipeline.py says why each).

A model that fails any of these is not blessed, `not_blessed_because` says why, and `serving_check.json`
holds every figure measured. The component starts the server as a command and imports nothing of
`serving`: the two stand on the same floor.
"""

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.dsl.io import fileio
from tfx.types import artifact_utils, component_spec, standard_artifacts
from tfx.utils import io_utils, path_utils

from components import code_version
from config import serving as serving_config
from models import features
from models.signatures import EXAMPLES_SIGNATURE, PREDICTION, RAW_FEATURES_SIGNATURE
from registry import versions
from reports.run_summary import NOT_SERVABLE_BECAUSE, SERVING_CHECK_REPORT_FILE

NOT_BLESSED_BECAUSE, REPORT_FILE = NOT_SERVABLE_BECAUSE, SERVING_CHECK_REPORT_FILE
_BLESSED_KEY = "blessed"  # and the two files below: what TFX's InfraValidator writes, so its readers work
_BLESSED_FILE, _NOT_BLESSED_FILE = "INFRA_BLESSED", "INFRA_NOT_BLESSED"
_CHECKED_VERSION = "1"
_REQUEST_TIMEOUT_SECONDS = 30
_SCHEMA_FILE = "schema.pbtxt"  # in a Schema artifact, as SchemaGen and ImportSchemaGen write it


class CheckFailed(Exception):
    """The candidate failed the check; the message says how, for the run summary."""


def held_out_examples(examples: types.Artifact, split: str, count: int) -> list[bytes]:
    """The first `count` tf.Examples of the split (the Evaluator's seeded sample), serialized without the
    label's source, as clients send them (the request contract refuses a feature serving never has)."""
    import tensorflow as tf

    files = sorted(fileio.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*")))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").take(count)
    return [without_label(record.numpy()) for record in records]


def without_label(serialized: bytes) -> bytes:
    """The tf.Example as a client sends it: without the label's source, which serving never sees."""
    import tensorflow as tf

    example = tf.train.Example.FromString(serialized)
    if features.TIPS in example.features.feature:
        del example.features.feature[features.TIPS]
    return example.SerializeToString()


def raw_row(serialized: bytes) -> dict:
    """A tf.Example as the JSON row a client sends: every feature it holds but the label's source."""
    import tensorflow as tf

    row = {}
    for name, feature in tf.train.Example.FromString(serialized).features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        if name == features.TIPS or not values:
            continue
        row[name] = values[0].decode("utf-8") if kind == "bytes_list" else values[0]
    return row


def model_predictions(model_dir: Path, serialized: list[bytes]) -> np.ndarray:
    """The model's own probabilities for these examples, in this process, as the Evaluator computes them."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(model_dir)).signatures[EXAMPLES_SIGNATURE]
    return signature(examples=tf.constant(serialized))[PREDICTION].numpy().reshape(-1)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def model_server(
    serving_dir: Path, schema_path: Path, log_path: Path
) -> Iterator[tuple[subprocess.Popen, str]]:
    """Our model server on `serving_dir`'s version, on a free loopback port, stopped on exit: (process, url)."""
    port = _free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "serving.server", "--serving-dir", str(serving_dir)]
            + ["--version", _CHECKED_VERSION, "--port", str(port), "--schema", str(schema_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: nothing it starts outlives the check
        )
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _call(url: str, body: dict | None = None) -> tuple[int, dict]:
    """(HTTP status, JSON body) of a GET, or of a POST of `body`."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=_REQUEST_TIMEOUT_SECONDS) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            return error.code, json.loads(payload)
        except ValueError:
            return error.code, {"error": payload.decode("utf-8", "replace")[:300]}


def wait_until_ready(server: subprocess.Popen, url: str, timeout_seconds: float, log_path: Path) -> float:
    """Seconds the server took to report ready; raises CheckFailed if it exits, says it failed, or times out."""
    started = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - started < timeout_seconds:
        if server.poll() is not None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise CheckFailed(
                f"the model server exited ({server.returncode}) before it was ready: {' '.join(tail)}"
            )
        try:
            status, body = _call(f"{url}/ready")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            status, body = 0, {}
        if status == 200:
            return time.monotonic() - started
        if status:
            last = body.get("error", f"HTTP {status}")
            if "failed to load" in last:
                raise CheckFailed(f"the model does not load in the model server: {last}")
        time.sleep(0.2)
    raise CheckFailed(f"the model server was not ready within {timeout_seconds:.0f} s ({last})")


def _predict(url: str, body: dict, what: str) -> list[float]:
    status, answer = _call(f"{url}/v1/models/{serving_config.SERVING_MODEL_NAME}:predict", body)
    if status != 200:
        raise CheckFailed(f"{what}: the model server answered HTTP {status}: {answer.get('error', answer)}")
    return [row[0] for row in answer["predictions"]]


def check_answers(url: str, serialized: list[bytes], model_dir: Path, tolerance: float) -> float:
    """Sends every trip through both signatures as one request each; returns the largest difference from
    the model's own predictions, and raises CheckFailed past `tolerance`."""
    answers = {
        RAW_FEATURES_SIGNATURE: _predict(url, {"instances": [raw_row(s) for s in serialized]}, "raw rows"),
        EXAMPLES_SIGNATURE: _predict(
            url,
            {
                "signature_name": EXAMPLES_SIGNATURE,
                "instances": [{"b64": base64.b64encode(s).decode()} for s in serialized],
            },
            "serialized tf.Examples",
        ),
    }
    expected = model_predictions(model_dir, serialized)  # after the server answered: a model failing
    largest = 0.0  # on these trips is reported as the server saw it, an HTTP status
    for signature, predictions in answers.items():
        difference = np.abs(np.asarray(predictions, dtype=np.float64) - expected)
        worst = int(np.argmax(difference))
        largest = max(largest, float(difference[worst]))
        if difference[worst] > tolerance:
            raise CheckFailed(
                f"wrong answers through {signature}: trip {worst} got {predictions[worst]:.6f}, the model "
                f"itself says {expected[worst]:.6f} (a difference of {difference[worst]:.2g}, at most "
                f"{tolerance:g} allowed)"
            )
    return largest


def p99_seconds(url: str, serialized: list[bytes]) -> float:
    """p99 of single-trip requests, alternating the two signatures, as clients send them."""
    seconds = []
    for index, example in enumerate(serialized):
        body = (
            {"instances": [raw_row(example)]}
            if index % 2 == 0
            else {
                "signature_name": EXAMPLES_SIGNATURE,
                "instances": [{"b64": base64.b64encode(example).decode()}],
            }
        )
        started = time.perf_counter()
        _predict(url, body, "a single trip")
        seconds.append(time.perf_counter() - started)
    return float(np.percentile(seconds, 99))


def peak_memory_mb(pid: int) -> float:
    """The process's peak resident memory (the kernel's VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise CheckFailed(f"the kernel reports no peak memory for the model server (pid {pid})")


def run_check(model_dir: Path, schema_path: Path, serialized: list[bytes], budgets: dict, work: Path) -> dict:
    """Every figure of the check on `model_dir`; `passed` and, when it did not, `not_blessed_because`."""
    report = {"trips": len(serialized), "budgets": budgets}
    try:
        if not serialized:
            raise CheckFailed("the held-out split holds no examples to ask the model server")
        serving_dir = work / "serving"
        versions.write_version(serving_dir, model_dir, _CHECKED_VERSION)
        with model_server(serving_dir, schema_path, work / "model_server.log") as (server, url):
            report["load_seconds"] = round(
                wait_until_ready(server, url, budgets["load_timeout_seconds"], work / "model_server.log"), 2
            )
            report["largest_prediction_difference"] = check_answers(
                url, serialized, model_dir, budgets["max_prediction_difference"]
            )
            report["p99_seconds"] = round(p99_seconds(url, serialized), 4)
            report["peak_memory_mb"] = round(peak_memory_mb(server.pid), 1)
        if report["p99_seconds"] > budgets["max_p99_seconds"]:
            raise CheckFailed(
                f"too slow: p99 {report['p99_seconds'] * 1000:.0f} ms over {len(serialized)} single-trip "
                f"requests, above the budget of {budgets['max_p99_seconds'] * 1000:.0f} ms"
            )
        if report["peak_memory_mb"] > budgets["max_peak_memory_mb"]:
            raise CheckFailed(
                f"too much memory: the model server peaked at {report['peak_memory_mb']:.0f} MB, above the "
                f"budget of {budgets['max_peak_memory_mb']} MB"
            )
    except CheckFailed as failure:
        report.update(passed=False, not_blessed_because=str(failure))
        return report
    report["passed"] = True
    return report


class Executor(base_executor.BaseExecutor):
    def Do(self, input_dict, output_dict, exec_properties) -> None:
        model = artifact_utils.get_single_instance(input_dict["model"])
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        schema = artifact_utils.get_single_instance(input_dict["schema"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        budgets = json.loads(exec_properties["budgets"])
        model_dir = Path(path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)))
        serialized = held_out_examples(examples, exec_properties["split"], budgets["rows"])
        with tempfile.TemporaryDirectory(prefix="serving-check-") as work:
            report = run_check(model_dir, Path(schema.uri) / _SCHEMA_FILE, serialized, budgets, Path(work))
        io_utils.write_string_file(os.path.join(blessing.uri, REPORT_FILE), json.dumps(report, indent=2))
        io_utils.write_string_file(
            os.path.join(blessing.uri, _BLESSED_FILE if report["passed"] else _NOT_BLESSED_FILE), ""
        )
        blessing.set_int_custom_property(_BLESSED_KEY, int(report["passed"]))
        if not report["passed"]:
            blessing.set_string_custom_property(NOT_BLESSED_BECAUSE, report["not_blessed_because"])


class ServingCheckSpec(types.ComponentSpec):
    PARAMETERS = {
        "split": component_spec.ExecutionParameter(type=str),
        "budgets": component_spec.ExecutionParameter(type=str),  # JSON: rows, and the budgets
        **code_version.PARAMETER,
    }
    INPUTS = {
        "model": component_spec.ChannelParameter(type=standard_artifacts.Model),
        "examples": component_spec.ChannelParameter(type=standard_artifacts.Examples),
        # The request contract the server enforces: the pipeline's curated schema, wherever it runs.
        "schema": component_spec.ChannelParameter(type=standard_artifacts.Schema),
    }
    OUTPUTS = {"blessing": component_spec.ChannelParameter(type=standard_artifacts.InfraBlessing)}


class ServingCheck(base_component.BaseComponent):
    """The pre-push serving check (module docstring). `budgets`: rows, max_prediction_difference,
    max_p99_seconds, max_peak_memory_mb, load_timeout_seconds."""

    SPEC_CLASS = ServingCheckSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(
        self,
        model: types.BaseChannel,
        examples: types.BaseChannel,
        schema: types.BaseChannel,
        split: str,
        budgets: dict,
    ):
        super().__init__(
            spec=ServingCheckSpec(
                model=model,
                examples=examples,
                schema=schema,
                split=split,
                budgets=json.dumps(budgets, sort_keys=True),
                # The server's code decides the outcome too: a change to it is a new check, not a cached one.
                **{code_version.KEY: code_version.source_fingerprint(Executor.__module__, "serving.server")},
                blessing=types.Channel(type=standard_artifacts.InfraBlessing),
            )
        )
