"""What a prediction request may carry, read from the curated schema's SERVING environment.

- Every column of the training data but the label's source (`tips`) may be sent; any other is refused.
- The features the model reads and the schema requires in every row (fare, trip_miles, payment_type,
  hour, day, month) must be sent; every other feature may be left out (or null): a model input left out
  is missing, as an empty CSV cell is in training, and a feature the model does not read (the timestamp,
  the census tracts) is only logged.
- Values have the schema's types: integers, numbers, strings. Out-of-domain values are answered (the
  model saw such data in training too) and counted, per feature, for monitoring.

A request is TF Serving's REST body: `{"instances": [{feature: value, ...}, ...]}` (rows) or
`{"inputs": {feature: [value, ...], ...}}` (columns), never both.
"""

import dataclasses
import math
from pathlib import Path

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from models import features

# The trip the README's curl and `serve start`'s example send: the features the model reads, as a client
# knows them before the ride ends.
EXAMPLE_TRIP = {
    "fare": 12.5, "trip_miles": 2.1, "payment_type": "Credit Card", "trip_start_hour": 18,
    "trip_start_day": 6, "trip_start_month": 5, "company": "Flash Cab",
}  # fmt: skip


class BadRequest(Exception):
    """A request the contract refuses; the message names the field and what was expected."""


@dataclasses.dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "int", "float" or "string"
    required: bool
    model_input: bool
    low: float | None = None  # int and float domains
    high: float | None = None
    values: frozenset[str] | None = None  # string domains


@dataclasses.dataclass
class Batch:
    """A valid request's rows, column by column (None where a value is missing)."""

    columns: dict[str, list]
    size: int
    missing: dict[str, int]  # model inputs left out, per feature
    out_of_domain: dict[str, int]


KINDS = {schema_pb2.INT: "int", schema_pb2.FLOAT: "float", schema_pb2.BYTES: "string"}
EXPECTED = {"int": "an integer", "float": "a number", "string": "a string"}


class RequestContract:
    """The schema's SERVING environment as request checks; built once per server."""

    def __init__(self, schema_path: Path, max_batch: int):
        schema = text_format.Parse(schema_path.read_text(), schema_pb2.Schema())
        string_domains = {domain.name: frozenset(domain.value) for domain in schema.string_domain}
        self.max_batch = max_batch
        self.columns: dict[str, Column] = {}
        for feature in schema.feature:
            if "SERVING" in feature.not_in_environment:
                continue
            model_input = feature.name in features.MODEL_INPUTS
            domain = feature.WhichOneof("domain_info")
            bounds = getattr(feature, domain) if domain in ("int_domain", "float_domain") else None
            self.columns[feature.name] = Column(
                name=feature.name,
                kind=KINDS[feature.type],
                required=model_input and feature.presence.min_fraction == 1.0,
                model_input=model_input,
                low=bounds.min if bounds is not None and bounds.HasField("min") else None,
                high=bounds.max if bounds is not None and bounds.HasField("max") else None,
                values=string_domains.get(feature.domain) if domain == "domain" else None,
            )

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns.values() if c.required]

    def parse(self, body: dict) -> Batch:
        """The request's rows as columns; raises BadRequest naming what is wrong."""
        if not isinstance(body, dict):
            raise BadRequest('the body must be a JSON object: {"instances": [...]} or {"inputs": {...}}')
        if ("instances" in body) == ("inputs" in body):
            raise BadRequest('send exactly one of "instances" (a list of rows) and "inputs" (columns)')
        if "instances" in body:
            rows = body["instances"]
            if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
                raise BadRequest('"instances" must be a list of objects, one per trip: {"fare": 12.5, ...}')
            columns = {name: [row.get(name) for row in rows] for name in self.columns}
            unknown = sorted({key for row in rows for key in row} - set(self.columns))
            size = len(rows)
        else:
            given = body["inputs"]
            if not isinstance(given, dict) or not all(isinstance(v, list) for v in given.values()):
                raise BadRequest(
                    '"inputs" must be an object of lists, one per feature: {"fare": [12.5, ...]}'
                )
            lengths = {len(values) for values in given.values()}
            if len(lengths) > 1:
                raise BadRequest(
                    f'every list in "inputs" must have the same length; got lengths {sorted(lengths)}'
                )
            size = lengths.pop() if lengths else 0
            columns = {name: given.get(name, [None] * size) for name in self.columns}
            unknown = sorted(set(given) - set(self.columns))
        if unknown:
            raise BadRequest(
                f"unknown feature(s) {', '.join(unknown)}: a request may carry {', '.join(self.columns)}"
            )
        if size == 0:
            raise BadRequest("the batch is empty: send at least one trip")
        if size > self.max_batch:
            raise BadRequest(
                f"the batch holds {size} trips, more than the {self.max_batch} a request may carry"
            )
        return self._checked(columns, size)

    def _checked(self, columns: dict[str, list], size: int) -> Batch:
        lacking = [columns[name].index(None) for name in self.required if None in columns[name]]
        if lacking:
            row = min(lacking)
            absent = [name for name in self.required if columns[name][row] is None]
            raise BadRequest(
                f"trip {row} lacks the required feature(s) {', '.join(absent)}: every trip needs "
                f"{', '.join(self.required)}"
            )
        missing, out_of_domain = {}, {}
        for name, column in self.columns.items():
            values = columns[name] = _typed_column(columns[name], column)
            absent = values.count(None)
            if column.model_input and absent:
                missing[name] = absent
            outside = _outside_domain(values, column)
            if outside:
                out_of_domain[name] = outside
        return Batch(columns=columns, size=size, missing=missing, out_of_domain=out_of_domain)


# The JSON types a column's values may have (None is a missing value). A column is checked and converted
# whole, which costs a fraction of checking value by value (a request may carry a thousand trips); a
# column that fails is checked again value by value, to name the first wrong trip.
ACCEPTED_TYPES = {
    "string": {str, type(None)},
    "float": {int, float, type(None)},
    "int": {int, float, type(None)},
}


def _typed_column(values: list, column: Column) -> list:
    """The column's values as its type (None stays None); raises BadRequest naming the first wrong one."""
    if {type(value) for value in values} <= ACCEPTED_TYPES[column.kind]:
        if column.kind == "string":
            return values
        if column.kind == "float":
            typed = [None if value is None else float(value) for value in values]
            if all(value is None or math.isfinite(value) for value in typed):
                return typed
        elif all(type(value) is not float or value.is_integer() for value in values):
            return [None if value is None else int(value) for value in values]
    return [None if value is None else _typed(value, column, row) for row, value in enumerate(values)]


def _typed(value, column: Column, row: int):
    """`value` as the column's type; raises BadRequest on a wrong type."""
    if column.kind == "string":
        if isinstance(value, str):
            return value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if column.kind == "float" and math.isfinite(value):
            return float(value)
        if column.kind == "int" and (isinstance(value, int) or value.is_integer()):
            return int(value)
    raise BadRequest(
        f"trip {row}: {column.name} must be {EXPECTED[column.kind]} (or null), got {type(value).__name__} {value!r}"
    )


def _outside_domain(values: list, column: Column) -> int:
    """How many of the (typed) values lie outside the column's domain."""
    if column.values is not None:
        return sum(1 for value in values if value is not None and value not in column.values)
    low = -math.inf if column.low is None else column.low
    high = math.inf if column.high is None else column.high
    return sum(1 for value in values if value is not None and not low <= value <= high)
