"""TF Serving's REST protocol over the served model, without HTTP: what a status, metadata or predict
request answers, and why a request is refused (`ServingError`, which carries the HTTP status to answer).

Requests are JSON rows (`instances`) or columns (`inputs`) of raw features (the `raw_features`
signature, the default) or, with `"signature_name": "serving_default"`, serialized tf.Examples as
`{"b64": ...}`; the contract is the schema's SERVING environment (serving/request_contract.py). A request
names the model, optionally a version or a label; a version or label this server does not serve is a 404.
Requests that arrive while the model is busy share its next call (serving/batching.py).
"""

import base64
import dataclasses

import orjson

from models import features
from models.signatures import EXAMPLES_SIGNATURE, RAW_FEATURES_SIGNATURE
from serving import request_checks
from serving.batching import RequestBatcher
from serving.metrics import ServerMetrics
from serving.model import LoadedModel, VersionSlot
from serving.request_contract import BadRequest, RequestContract

LIST_OF_KIND = {"int": "int64_list", "float": "float_list", "string": "bytes_list"}


class ServingError(request_checks.RefusedRequest):
    """A request this server does not answer with a prediction: the HTTP status and the reason (a 4xx
    for the request's fault, 503 while no version is loaded)."""


@dataclasses.dataclass
class Prediction:
    """A predict request's answer: TF Serving's JSON body, and the trips' probabilities and raw columns
    (features.SERVING_COLUMNS, one list per column) for the request log."""

    body: bytes
    probabilities: list[float]
    columns: list


class DataPlane:
    """TF Serving's REST protocol for one model name, the labels it answers for, and its version slot."""

    def __init__(
        self,
        name: str,
        labels: tuple[str, ...],
        slot: VersionSlot,
        contract: RequestContract,
        metrics: ServerMetrics,
        max_body_bytes: int,
    ):
        self.name, self.labels, self.slot, self.contract = name, labels, slot, contract
        self.metrics, self.max_body_bytes = metrics, max_body_bytes
        self.batcher = RequestBatcher(contract.max_batch)

    def close(self) -> None:
        self.batcher.close()

    def status(self, version: str | None = None, label: str | None = None) -> dict:
        """`GET /v1/models/NAME[/versions/V|/labels/L]`: the version served and its state."""
        self._check_label(label)
        model, slot = self.slot.model, self.slot
        if model is None and slot.error:
            raise ServingError(404, f"Could not find any versions of model {self.name}: {slot.error}")
        shown = [model.version] if model else []
        if version and version not in shown:
            raise ServingError(
                404, f"Version {version} of model {self.name} is not served here (serving {shown or 'none'})"
            )
        error_code = "OK" if slot.state == "AVAILABLE" else "UNKNOWN"
        return {
            "model_version_status": [
                {
                    "version": served,
                    "state": slot.state,
                    "status": {"error_code": error_code, "error_message": slot.error},
                }
                for served in shown
            ]
        }

    def metadata(self, version: str | None = None, label: str | None = None) -> dict:
        """`GET /v1/models/NAME[/versions/V|/labels/L]/metadata`: the signatures of the version served."""
        self._check_label(label)
        model = self.slot.model
        if model is None:
            raise ServingError(404, f"Could not find any versions of model {self.name}: {self.slot.error}")
        if version is not None and version != model.version:
            raise ServingError(
                404, f"Version {version} of model {self.name} is not served here (serving {model.version})"
            )
        return {
            "model_spec": {"name": self.name, "signature_name": "", "version": model.version},
            "metadata": {"signature_def": {"signature_def": model.signature_defs()}},
        }

    def _check_label(self, label: str | None) -> None:
        if label is not None and label not in self.labels:
            raise ServingError(
                404,
                f"Label {label} of model {self.name} is not served here (labels: {', '.join(self.labels) or 'none'})",
            )

    def readiness(self) -> tuple[bool, dict]:
        """(whether a version is loaded, what `/ready` says): `failed` means a pinned version that failed
        to load, which will not load by waiting (the stack stops waiting for it)."""
        model = self.slot.model
        if model is None:
            return False, {
                "error": f"not ready: {self.slot.error or 'loading'}",
                "failed": bool(self.slot.error),
            }
        return True, {
            "ready": True,
            "version": model.version,
            "state": self.slot.state,
            "error": self.slot.error,
        }

    async def predict(
        self, model: LoadedModel | None, body: bytes, route: str, version: str | None, label: str | None
    ) -> Prediction:
        """`POST /v1/models/NAME[/versions/V|/labels/L]:predict` on `model` (the slot's model when the
        request arrived): TF Serving's `predictions` for rows, `outputs` for columns."""
        self._check_label(label)
        if model is None:
            raise ServingError(503, f"Model {self.name} is not ready: {self.slot.error or 'still loading'}")
        if version is not None and version != model.version:
            raise ServingError(
                404, f"Version {version} of model {self.name} is not served here (serving {model.version})"
            )
        request_checks.check_size(body, self.max_body_bytes)
        payload = request_checks.parse_json(body)  # orjson: a few times faster than `json` on a batch
        try:
            signature = (
                payload.get("signature_name", RAW_FEATURES_SIGNATURE)
                if isinstance(payload, dict)
                else RAW_FEATURES_SIGNATURE
            )
            if signature == EXAMPLES_SIGNATURE:
                return self._predict_examples(model, payload, route)
            if signature != RAW_FEATURES_SIGNATURE:
                raise BadRequest(
                    f"unknown signature_name {signature!r}: expected {RAW_FEATURES_SIGNATURE} "
                    f"(raw features, the default) or {EXAMPLES_SIGNATURE} (serialized tf.Examples)"
                )
            batch = self.contract.parse(payload)
        except BadRequest as error:
            raise ServingError(400, str(error)) from error
        probabilities = await self.batcher.predict(model, batch)
        self.metrics.record_predictions(
            model.version, route, probabilities, batch.missing, batch.out_of_domain
        )
        columns = [batch.columns[column] for column in features.SERVING_COLUMNS]
        return _prediction(payload, probabilities, model.version, columns)

    def _predict_examples(self, model: LoadedModel, payload: dict, route: str) -> Prediction:
        """The `serving_default` signature: each tf.Example is read back into a row and checked by the
        same contract as a JSON row (required features, types, ranges), so that an Example the model's
        own parsing would fail on is the request's 400, never the model's 500."""
        instances = payload.get("instances")
        if not isinstance(instances, list) or not instances:
            raise BadRequest('"instances" must be a non-empty list of {"b64": "<serialized tf.Example>"}')
        if len(instances) > self.contract.max_batch:
            raise BadRequest(
                f"the batch holds {len(instances)} trips, more than the {self.contract.max_batch} a request may carry"
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
        rows = [
            _example_row(example, index, self.contract.columns) for index, example in enumerate(serialized)
        ]
        batch = self.contract.parse({"instances": rows})
        probabilities = model.predict_examples(serialized)
        self.metrics.record_predictions(
            model.version, route, probabilities, batch.missing, batch.out_of_domain
        )
        columns = [batch.columns[column] for column in features.SERVING_COLUMNS]
        return _prediction(payload, probabilities, model.version, columns)


def _prediction(payload: dict, probabilities: list[float], version: str, columns: list) -> Prediction:
    """TF Serving's response shape: `predictions` (one list per row) for rows, `outputs` for columns."""
    key = "outputs" if "inputs" in payload else "predictions"
    body = orjson.dumps({key: [[p] for p in probabilities], "model_version": version})
    return Prediction(body, probabilities, columns)


def _example_row(serialized: bytes, index: int, columns: dict) -> dict:
    """A tf.Example's features as the JSON row a client would send ({feature: value}, absent where it has
    no value); raises BadRequest for what the model's parsing takes one value of one type for: a feature
    of another type than the schema's, more than one value, bytes that are not UTF-8 text. Features the
    contract does not know are left to it (it refuses them)."""
    import tensorflow as tf

    try:
        example = tf.train.Example.FromString(serialized)
    except Exception as error:  # noqa: BLE001 - protobuf's DecodeError has no stable import path
        raise BadRequest(f"trip {index}: not a serialized tf.Example ({error})") from error
    row = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        values = list(getattr(feature, kind).value) if kind else []
        if not values:
            continue  # an empty list is a missing value, as an empty CSV cell
        expected = LIST_OF_KIND[columns[name].kind] if name in columns else None
        if expected and kind != expected:
            raise BadRequest(f"trip {index}: {name} is a {kind} in the tf.Example, expected a {expected}")
        if len(values) > 1:
            raise BadRequest(
                f"trip {index}: {name} holds {len(values)} values in the tf.Example, expected one"
            )
        value = values[0]
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError as error:
                raise BadRequest(
                    f"trip {index}: {name} is not UTF-8 text ({error.reason} at byte {error.start})"
                ) from None
        row[name] = value
    return row
