"""The model: one pushed SavedModel version loaded for prediction, and the slot that says which version a
server serves and loads it in the background.

A server serves one version of the Pusher's serving directory: a pinned one (what the local stack runs,
one process per live version), or the newest that is in production (`LATEST`, what TF Serving does by
default), picked up without a restart when a new one is pushed. The slot reads the directory through the
registry, so a half-written version is never loaded, and a version that fails to load leaves the server up
with the reason (`VersionSlot.error`).
"""

import gc
import threading
from pathlib import Path

import numpy as np

from models.signatures import EXAMPLES_SIGNATURE, MISSING, PREDICTION, RAW_FEATURES_SIGNATURE
from registry import versions
from serving.metrics import ServerMetrics
from serving.request_contract import Batch

LATEST = "latest"


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

    @property
    def raw_inputs(self) -> list[tuple[str, type, object]]:
        """The `raw_features` inputs in call order: (name, NumPy type, the value that reads as missing)."""
        return list(self._inputs)

    def predict(self, batch: Batch) -> list[float]:
        arrays = [
            _input_array(batch.columns[name], numpy_type, marker) for name, numpy_type, marker in self._inputs
        ]
        return self._raw(*arrays).reshape(-1).tolist()

    def predict_arrays(self, arrays: list[np.ndarray]) -> np.ndarray:
        """Probabilities for columns already typed, one array per `raw_inputs` entry, in its order."""
        return self._raw(*arrays).reshape(-1)

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


def _input_array(values: list, numpy_type, marker) -> np.ndarray:
    """A column as the model's input array, `marker` where a value is missing (None)."""
    absent = values.count(None)
    if not absent:
        return np.array(values, dtype=numpy_type)
    if absent == len(values):  # a feature the request left out: no pass over its values in Python
        return np.full(len(values), marker, dtype=numpy_type)
    return np.array([marker if v is None else v for v in values], dtype=numpy_type)


class VersionSlot:
    """The version this server serves, loaded in the background: `version` pinned, or the newest in
    production (`LATEST`); never a half-written one. Keeps serving the old one until a new one has loaded.

    `state` is TF Serving's version state (START, LOADING, AVAILABLE, END) and `error` why none is served.
    """

    def __init__(self, serving_dir: Path, version: str, poll_seconds: float, metrics: ServerMetrics):
        self.serving_dir, self.version, self.poll_seconds = serving_dir, version, poll_seconds
        self.metrics = metrics
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
        if self.version != LATEST:
            return self.version if self.version in versions.complete_versions(self.serving_dir) else None
        return versions.production_version(self.serving_dir)

    def _load_wanted(self) -> None:
        try:
            wanted = self.wanted()
        except versions.RegistryError as error:
            self.state, self.error = "END", str(error)
            return
        if wanted is None:
            if self.model is None:
                which = "" if self.version == LATEST else f" {self.version}"
                self.state = "END"
                self.error = f"{self.serving_dir} holds no complete version{which} to serve"
            return
        if self.model is not None and self.model.version == wanted:
            return
        self.state, self.error = "LOADING", ""
        try:
            model = LoadedModel(self.serving_dir / wanted)
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
        while not self._stop.wait(self.poll_seconds):
            self._load_wanted()
