"""The model server: TF Serving's REST API for the pushed model, on Starlette and uvicorn.

    GET  /v1/models/taxi                               version status, in TF Serving's shape
    GET  /v1/models/taxi/metadata                      the signatures
    POST /v1/models/taxi:predict                       {"instances": [...]} or {"inputs": {...}}
    POST /v1/models/taxi/versions/{v}:predict          the same, naming the version
    POST /v1/models/taxi/labels/{label}:predict        the same, naming the label (stable, canary)
    GET  /metrics   /ready   /healthz

A server serves one version of the Pusher's serving directory: a pinned one (`--version V`, what the
local stack runs, one process per live version), or the newest that is in production (`--version latest`,
what TF Serving does by default), picked up without a restart when a new one is pushed. It reads the
directory through the registry, so a half-written version is never loaded, and a version that fails to
load leaves the server up and saying why (`/ready`: 503 and the reason).

Requests are JSON rows of raw features (the `raw_features` signature) or, with `"signature_name":
"serving_default"`, serialized tf.Examples as `{"b64": ...}`; the contract is the schema's SERVING
environment (serving/request_contract.py). Bad requests get a 4xx and `{"error": ...}` naming the field;
never a 5xx for a request's fault. Every answered trip goes to the request log (serving/request_log.py).
Requests that arrive while the model is busy share its next call (serving/batching.py).
A copy mirrored by nginx (the `shadow` route) is answered 202 at once and predicted afterwards.
"""

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import datetime
import gc
import itertools
import signal
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import prometheus_client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config import folders
from config import pipeline as pipeline_config
from config import serving as serving_config
from models import features
from models.model import MISSING, PREDICTION, RAW_FEATURES_SIGNATURE
from registry import versions
from serving import request_log
from serving.batching import RequestBatcher
from serving.metrics import ServerMetrics
from serving.request_contract import BadRequest, Batch, RequestContract

EXAMPLES_SIGNATURE = "serving_default"
ROUTE_HEADER, REQUEST_ID_HEADER, VERSION_HEADER = "x-route", "x-request-id", "x-model-version"
LATEST = "latest"


@dataclasses.dataclass
class ServerSettings:
    serving_dir: Path
    version: str  # a version number, or LATEST
    labels: tuple[str, ...]  # the labels this server answers for (stable, canary)
    request_log_dir: Path | None
    schema_path: Path = folders.SCHEMA_PATH
    model_name: str = serving_config.SERVING_MODEL_NAME
    poll_seconds: float = serving_config.SERVING_POLL_SECONDS
    max_batch: int = serving_config.SERVING_MAX_BATCH
    max_body_bytes: int = serving_config.SERVING_MAX_BODY_BYTES


class LoadedModel:
    """One SavedModel version, loaded as TF Serving loads it: its graph in a TensorFlow session of its own,
    with a prepared call per signature.

    A single trip costs about 0.6 ms this way, against about 3 ms through `tf.saved_model.load`'s eager
    signature, which converts and checks each of the 14 named inputs in Python on every call; the prepared
    call feeds NumPy arrays straight to the graph (`make bench-serve` measures both).
    """

    def __init__(self, path: Path):
        import tensorflow as tf

        self.version = path.name
        graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=graph)
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.load(self.session, [tf.saved_model.SERVING], str(path))
        self.signatures = {
            name: meta_graph.signature_def[name] for name in (EXAMPLES_SIGNATURE, RAW_FEATURES_SIGNATURE)
        }
        raw = self.signatures[RAW_FEATURES_SIGNATURE]
        self.input_dtypes = {name: tf.as_dtype(raw.inputs[name].dtype) for name in sorted(raw.inputs)}
        # Per input, in the callable's order: its NumPy type and the value that reads as missing.
        self._inputs = [
            (name, object if dtype == tf.string else dtype.as_numpy_dtype, MISSING[dtype])
            for name, dtype in self.input_dtypes.items()
        ]
        self._raw = self._callable(raw, list(self.input_dtypes))
        self._examples = self._callable(self.signatures[EXAMPLES_SIGNATURE], ["examples"])
        # One prediction before serving: the session's first run prepares the graph (~0.3 s), which
        # would otherwise fall on the first request (and, for a shadow, past its timeout).
        warm_up = {object: "warm-up", np.float32: 1.0, np.int64: 1}
        self._raw(*(np.array([warm_up[numpy_type]], dtype=numpy_type) for _, numpy_type, _ in self._inputs))

    def _callable(self, signature, input_names: list[str]):
        """The signature as one prepared C++ call of the session, run in the calling thread.

        `Session.make_callable` with feeds falls back to `Session.run` and its per-call Python feed
        handling; a callable made from `CallableOptions` (how Keras's TF1 backend calls its graphs) is
        prepared once. Running it in the caller's thread (`inter_op_thread_pool = -1`, meant for small
        graphs) saves handing each op to TensorFlow's pool threads, which cost more CPU than this
        graph's kernels. `make bench-serve` measures the call.
        """
        from tensorflow.core.protobuf import config_pb2

        options = config_pb2.CallableOptions(
            feed=[signature.inputs[name].name for name in input_names],
            fetch=[signature.outputs[PREDICTION].name],
        )
        options.run_options.inter_op_thread_pool = -1
        prepared = self.session._make_callable_from_options(options)
        return lambda *arrays: prepared(*arrays)[0]

    def predict(self, batch: Batch) -> list[float]:
        arrays = [
            np.array([marker if v is None else v for v in batch.columns[name]], dtype=numpy_type)
            for name, numpy_type, marker in self._inputs
        ]
        return self._raw(*arrays).reshape(-1).tolist()

    def predict_examples(self, serialized: list[bytes]) -> list[float]:
        return self._examples(np.array(serialized, dtype=object)).reshape(-1).tolist()

    def signature_defs(self) -> dict:
        """The signatures in TF Serving's metadata shape (names, dtypes, shapes)."""
        from tensorflow.core.framework import types_pb2

        def tensors(infos) -> dict:
            return {
                name: {
                    "dtype": types_pb2.DataType.Name(info.dtype),
                    "tensor_shape": {"dim": [{"size": str(d.size)} for d in info.tensor_shape.dim]},
                    "name": info.name,
                }
                for name, info in infos.items()
            }

        return {
            name: {
                "inputs": tensors(signature.inputs),
                "outputs": tensors(signature.outputs),
                "method_name": signature.method_name,
            }
            for name, signature in self.signatures.items()
        }


class VersionSlot:
    """The version this server serves, loaded in the background: the one pinned, or the newest in
    production; never a half-written one. Keeps serving the old one until a new one has loaded."""

    def __init__(self, settings: ServerSettings, metrics: ServerMetrics):
        self.settings, self.metrics = settings, metrics
        self.model: LoadedModel | None = None
        self.state, self.error = "START", ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="version-watch", daemon=True)

    def start(self) -> None:
        self._load_wanted()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def wanted(self) -> str | None:
        if self.settings.version != LATEST:
            return (
                self.settings.version
                if self.settings.version in versions.complete_versions(self.settings.serving_dir)
                else None
            )
        return versions.production_version(self.settings.serving_dir)

    def _load_wanted(self) -> None:
        try:
            wanted = self.wanted()
        except versions.RegistryError as error:
            self.state, self.error = "END", str(error)
            return
        if wanted is None:
            if self.model is None:
                which = "" if self.settings.version == LATEST else f" {self.settings.version}"
                self.state = "END"
                self.error = f"{self.settings.serving_dir} holds no complete version{which} to serve"
            return
        if self.model is not None and self.model.version == wanted:
            return
        self.state, self.error = "LOADING", ""
        try:
            model = LoadedModel(self.settings.serving_dir / wanted)
        except Exception as error:  # a broken version must not take the server down
            self.state, self.error = (
                "END",
                f"version {wanted} failed to load: {type(error).__name__}: {error}",
            )
            return
        previous, self.model = self.model, model
        self.state = "AVAILABLE"
        # The loaded graph and TensorFlow's modules are hundreds of thousands of long-lived objects that
        # every full garbage collection would walk again; frozen, they are left out. On batched requests
        # the event loop then spends about 15 % less CPU (measured here, a server alone under load).
        gc.freeze()
        self.metrics.loaded.labels(model.version).set(1)
        if previous is not None:
            self.metrics.loaded.labels(previous.version).set(0)

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.poll_seconds):
            self._load_wanted()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(settings: ServerSettings) -> Starlette:
    metrics = ServerMetrics(pipeline_config.REPORTED_DECISION_THRESHOLD)
    contract = RequestContract(settings.schema_path, settings.max_batch)
    slot = VersionSlot(settings, metrics)
    batcher = RequestBatcher(settings.max_batch)
    shadow_pending: set[asyncio.Task] = set()  # copies answered at once, predicted after
    log = None
    default_route = settings.labels[0] if settings.labels else "stable"
    name = settings.model_name

    async def status(request: Request) -> Response:
        wanted = request.path_params.get("version")
        model = slot.model
        if model is None and slot.error:
            return _error(404, f"Could not find any versions of model {name}: {slot.error}")
        shown = [model.version] if model else []
        if wanted and wanted not in shown:
            return _error(
                404, f"Version {wanted} of model {name} is not served here (serving {shown or 'none'})"
            )
        return JSONResponse(
            {
                "model_version_status": [
                    {
                        "version": version,
                        "state": slot.state,
                        "status": {
                            "error_code": "OK" if slot.state == "AVAILABLE" else "UNKNOWN",
                            "error_message": slot.error,
                        },
                    }
                    for version in shown
                ]
            }
        )

    async def metadata(request: Request) -> Response:
        model = slot.model
        if model is None:
            return _error(404, f"Could not find any versions of model {name}: {slot.error}")
        return JSONResponse(
            {
                "model_spec": {"name": name, "signature_name": "", "version": model.version},
                "metadata": {"signature_def": {"signature_def": model.signature_defs()}},
            }
        )

    async def predict(request: Request) -> Response:
        route = request.headers.get(ROUTE_HEADER, default_route)
        if route != serving_config.SHADOW_ROUTE:
            return await _respond(request, route)
        # nginx's `mirror` holds the client's keep-alive connection until the shadow has answered, so a
        # shadow answers nginx at once and predicts afterwards (Envoy's and Istio's mirroring never wait
        # either): a slow shadow then costs stable's clients nothing. Its latency, prediction and log row
        # are recorded as for any request; past SHADOW_MAX_PENDING waiting copies, new ones are dropped
        # and counted (status 503 on the shadow route).
        if len(shadow_pending) >= serving_config.SHADOW_MAX_PENDING:
            # Counted, not timed: a dropped copy has no latency to put in the shadow's histogram.
            metrics.requests.labels(slot.model.version if slot.model else "none", route, "503").inc()
            return _error(503, f"the shadow is {len(shadow_pending)} requests behind: this copy is dropped")
        await request.body()  # read now, while the connection is this request's
        task = asyncio.get_running_loop().create_task(_respond(request, route))
        shadow_pending.add(task)
        task.add_done_callback(shadow_pending.discard)
        return Response(status_code=202)

    async def _respond(request: Request, route: str) -> Response:
        started = time.perf_counter()
        request_id = request.headers.get(REQUEST_ID_HEADER) or uuid.uuid4().hex
        model = slot.model
        version = model.version if model else "none"
        try:
            response = await _answer(request, model, route)
        except Exception as error:  # the model's fault, not the request's: 500, counted, the server stays up
            message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())[:300]
            print(f"version {version} failed a request: {type(error).__name__}: {message}", flush=True)
            response = _error(500, f"version {version} failed to predict: {type(error).__name__}: {message}")
        seconds = time.perf_counter() - started
        metrics.record(version, route, response.status_code, seconds)
        response.headers[REQUEST_ID_HEADER] = request_id
        if model is not None:
            response.headers[VERSION_HEADER] = model.version
        if log is not None and response.status_code == 200 and hasattr(response, "logged"):
            timestamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
            log.append(_log_rows(request_id, timestamp, version, route, seconds, *response.logged))
        return response

    async def _answer(request: Request, model: LoadedModel | None, route: str) -> Response:
        wanted_version = request.path_params.get("version")
        wanted_label = request.path_params.get("label")
        if wanted_label is not None and wanted_label not in settings.labels:
            return _error(
                404,
                f"Label {wanted_label} of model {name} is not served here (labels: {', '.join(settings.labels) or 'none'})",
            )
        if model is None:
            return _error(503, f"Model {name} is not ready: {slot.error or 'still loading'}")
        if wanted_version is not None and wanted_version != model.version:
            return _error(
                404, f"Version {wanted_version} of model {name} is not served here (serving {model.version})"
            )
        body = await request.body()
        if len(body) > settings.max_body_bytes:
            return _error(
                413, f"the request body is {len(body)} bytes, more than the {settings.max_body_bytes} allowed"
            )
        try:
            payload = orjson.loads(body)  # a few times faster than `json` on a batch, and refuses NaN
        except orjson.JSONDecodeError as error:
            return _error(400, f"malformed JSON: {error}")
        try:
            if (
                isinstance(payload, dict)
                and payload.get("signature_name", RAW_FEATURES_SIGNATURE) == EXAMPLES_SIGNATURE
            ):
                return _predict_examples(model, payload, route)
            if (
                isinstance(payload, dict)
                and payload.get("signature_name", RAW_FEATURES_SIGNATURE) != RAW_FEATURES_SIGNATURE
            ):
                raise BadRequest(
                    f"unknown signature_name {payload['signature_name']!r}: expected {RAW_FEATURES_SIGNATURE} "
                    f"(raw features, the default) or {EXAMPLES_SIGNATURE} (serialized tf.Examples)"
                )
            batch = contract.parse(payload)
        except BadRequest as error:
            return _error(400, str(error))
        probabilities = await batcher.predict(model, batch)
        metrics.record_predictions(model.version, route, probabilities, batch.missing, batch.out_of_domain)
        columns = [batch.columns[column] for column in features.SERVING_COLUMNS]
        return _predictions(payload, probabilities, model.version, columns)

    def _predict_examples(model: LoadedModel, payload: dict, route: str) -> Response:
        instances = payload.get("instances")
        if not isinstance(instances, list) or not instances:
            raise BadRequest('"instances" must be a non-empty list of {"b64": "<serialized tf.Example>"}')
        if len(instances) > settings.max_batch:
            raise BadRequest(
                f"the batch holds {len(instances)} trips, more than the {settings.max_batch} a request may carry"
            )
        serialized = []
        for index, instance in enumerate(instances):
            value = instance.get("examples", instance) if isinstance(instance, dict) else None
            if not isinstance(value, dict) or not isinstance(value.get("b64"), str):
                raise BadRequest(f'trip {index}: expected {{"b64": "<serialized tf.Example>"}}')
            try:
                serialized.append(base64.b64decode(value["b64"], validate=True))
            except ValueError as error:
                raise BadRequest(f"trip {index}: b64 is not base64 ({error})") from error
        rows = [_example_row(example, index, contract.columns) for index, example in enumerate(serialized)]
        probabilities = model.predict_examples(serialized)
        metrics.record_predictions(model.version, route, probabilities, {}, {})
        return _predictions(payload, probabilities, model.version, list(zip(*rows, strict=True)))

    async def ready(request: Request) -> Response:
        if slot.model is None:
            # `failed`: a pinned version that failed to load will not load by waiting (the stack stops).
            return JSONResponse(
                {"error": f"not ready: {slot.error or 'loading'}", "failed": bool(slot.error)},
                status_code=503,
            )
        return JSONResponse(
            {"ready": True, "version": slot.model.version, "state": slot.state, "error": slot.error}
        )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"alive": True})

    async def scrape(request: Request) -> Response:
        return Response(
            prometheus_client.generate_latest(metrics.registry),
            media_type=prometheus_client.CONTENT_TYPE_LATEST,
        )

    @contextlib.asynccontextmanager
    async def lifespan(app):
        startup()
        try:
            yield
        finally:
            shutdown()

    def startup() -> None:
        nonlocal log
        slot.start()
        if settings.request_log_dir is not None:
            writer = f"{'-'.join(settings.labels) or 'server'}-{settings.version}-{uuid.uuid4().hex[:6]}"
            log = request_log.RequestLog(
                settings.request_log_dir,
                writer,
                serving_config.REQUEST_LOG_FLUSH_SECONDS,
                serving_config.REQUEST_LOG_MAX_BYTES,
                serving_config.REQUEST_LOG_MAX_SECONDS,
            )
            if threading.current_thread() is threading.main_thread():  # not under a test client's thread
                signal.signal(signal.SIGUSR1, lambda *_: log.close_file_soon())

    def shutdown() -> None:
        slot.stop()
        batcher.close()
        if log is not None:
            log.close()

    base = f"/v1/models/{name}"
    return Starlette(
        routes=[
            Route(base, status),
            Route(f"{base}/versions/{{version}}", status),
            Route(f"{base}/metadata", metadata),
            Route(f"{base}:predict", predict, methods=["POST"]),
            Route(f"{base}/versions/{{version}}:predict", predict, methods=["POST"]),
            Route(f"{base}/labels/{{label}}:predict", predict, methods=["POST"]),
            Route("/ready", ready),
            Route("/healthz", healthz),
            Route("/metrics", scrape),
        ],
        lifespan=lifespan,
    )


def _predictions(payload: dict, probabilities: list[float], version: str, columns: list) -> Response:
    """TF Serving's response shape: `predictions` (one list per row) for rows, `outputs` for columns.
    It carries the trips' probabilities and raw columns (features.SERVING_COLUMNS) for the request log."""
    values = [[p] for p in probabilities]
    key = "outputs" if "inputs" in payload else "predictions"
    response = Response(orjson.dumps({key: values, "model_version": version}), media_type="application/json")
    response.logged = (probabilities, columns)
    return response


def _log_rows(
    request_id: str, timestamp: str, version: str, route: str, seconds: float, probabilities, columns
):
    """A request's request-log rows (request_log.COLUMNS), built lazily, when the log's thread writes
    them: a batch's rows are then never built on the request's path."""
    trips = len(probabilities)
    if any(len(column) != trips for column in columns):  # checked now: the log's thread must not fail
        raise ValueError(f"{trips} predictions for columns of {sorted({len(c) for c in columns})} trips")
    return zip(
        itertools.repeat(request_id, trips),
        range(trips),
        itertools.repeat(timestamp, trips),
        itertools.repeat(version, trips),
        itertools.repeat(route, trips),
        itertools.repeat(round(seconds * 1000, 3), trips),
        map(round, probabilities, itertools.repeat(6, trips)),
        *columns,
        strict=False,  # lengths checked above
    )


LIST_OF_KIND = {"int": "int64_list", "float": "float_list", "string": "bytes_list"}


def _example_row(serialized: bytes, index: int, columns: dict) -> list:
    """A tf.Example's raw features as a request-log row (the training columns without `tips`); raises
    BadRequest for a feature stored as another type than the schema's (parsing would fail on it)."""
    import tensorflow as tf

    try:
        example = tf.train.Example.FromString(serialized)
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError has no stable import path
        raise BadRequest(f"trip {index}: not a serialized tf.Example ({error})") from error
    row = []
    for column in features.SERVING_COLUMNS:
        feature = example.features.feature.get(column)
        kind = feature.WhichOneof("kind") if feature is not None else None
        values = list(getattr(feature, kind).value) if kind else []
        expected = LIST_OF_KIND[columns[column].kind] if column in columns else None
        if values and expected and kind != expected:
            raise BadRequest(f"trip {index}: {column} is a {kind} in the tf.Example, expected a {expected}")
        value = values[0] if values else ""
        row.append(value.decode() if isinstance(value, bytes) else value)
    return row


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(
        prog="python -m serving.model_server", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--serving-dir", required=True, help="The Pusher's serving directory.")
    parser.add_argument("--version", default=LATEST, help=f"A version to serve, or '{LATEST}' (default).")
    parser.add_argument(
        "--label", action="append", default=[], help="A label this server answers for (repeatable)."
    )
    parser.add_argument("--request-log", help="Folder for the request log (default: none).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    settings = ServerSettings(
        serving_dir=Path(args.serving_dir),
        version=args.version,
        labels=tuple(args.label),
        request_log_dir=Path(args.request_log) if args.request_log else None,
    )
    # httptools and uvloop rather than uvicorn's pure-Python defaults (h11, asyncio's loop): about a
    # millisecond less per request, measured by `make bench-serve` (docs/serving.md).
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
