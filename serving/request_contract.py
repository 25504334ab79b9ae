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
import functools
import itertools
import math
import operator
from pathlib import Path

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from models import features

# The trip the README's curl and `serve start`'s example send: the features the model reads, as a client
# knows them before the ride ends.
EXAMPLE_TRIP = {
    "fare": 12.5, "trip_miles": 2.1, "payment_type": "Credit Card", "trip_start_hour": 18,
    "trip_start_day": 6, "trip_start_month": 5, "company": "Taxi Affiliation Services",
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
# What the model's input tensors hold (int64, float32): a value beyond them would overflow in the model,
# the request's fault, so it is refused here rather than failing the model call.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
FLOAT32_MAX = 3.4028234663852886e38
EXPECTED = {"int": "an integer", "float": "a number", "string": "a string"}
RANGE = {"int": "int64's range", "float": "float32's finite range (±3.4e38)"}


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
            if not isinstance(rows, list) or not all(map(isinstance, rows, itertools.repeat(dict))):
                raise BadRequest('"instances" must be a list of objects, one per trip: {"fare": 12.5, ...}')
            sent = set().union(*rows)
            unknown = sorted(sent - self.columns.keys())
            columns = _row_columns(rows, sent, self.columns) if not unknown else {}
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
            unknown = sorted(given.keys() - self.columns.keys())
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
        absent_counts = {name: values.count(None) for name, values in columns.items()}
        lacking = [columns[name].index(None) for name in self.required if absent_counts[name]]
        if lacking:
            row = min(lacking)
            absent = [name for name in self.required if columns[name][row] is None]
            raise BadRequest(
                f"trip {row} lacks the required feature(s) {', '.join(absent)}: every trip needs "
                f"{', '.join(self.required)}"
            )
        missing, out_of_domain = {}, {}
        for name, column in self.columns.items():
            values, absent = columns[name], absent_counts[name]
            if column.model_input and absent:
                missing[name] = absent
            if absent == size:  # a feature no trip carries: nothing to check
                continue
            present = values if not absent else list(filter(_is_not_none, values))
            columns[name], outside = _checked_column(values, present, column)
            if outside:
                out_of_domain[name] = outside
        return Batch(columns=columns, size=size, missing=missing, out_of_domain=out_of_domain)


def _row_columns(rows: list[dict], sent: set, known: dict) -> dict[str, list]:
    """The rows' values as one list per known feature (None where a row leaves it out)."""
    if len(sent) > 1 and set(map(len, rows)) == {len(sent)}:
        # Every row carries the same features (the usual request): one C-level transposition.
        names = list(sent)
        transposed = zip(*map(operator.itemgetter(*names), rows), strict=True)
        sent_columns = dict(zip(names, map(list, transposed), strict=True))
        return {name: sent_columns.get(name) or [None] * len(rows) for name in known}
    return {name: list(map(dict.get, rows, itertools.repeat(name))) for name in known}


# The JSON types a column's values may have (None is a missing value). A column is checked and converted
# whole, in a few C-level passes (a request may carry a thousand trips); a column that fails is checked
# again value by value, to name the first wrong trip.
NONE = type(None)
ACCEPTED_TYPES = {"string": {str, NONE}, "float": {int, float, NONE}, "int": {int, float, NONE}}
_is_not_none = functools.partial(operator.is_not, None)


def _checked_column(values: list, present: list, column: Column) -> tuple[list, int]:
    """The column's values as its type (None stays None), and how many lie outside its domain; raises
    BadRequest naming the first wrong value. `present`: the values that are not None, in order."""
    kinds = set(map(type, present))
    if kinds <= ACCEPTED_TYPES[column.kind]:
        if column.kind == "string":
            if "\r" in "".join(present):
                row = next(row for row, value in enumerate(values) if value is not None and "\r" in value)
                # Python's CSV writer leaves a lone CR unquoted, and then no reader can read the request log.
                raise BadRequest(
                    f"trip {row}: {column.name} holds a carriage return (\\r), which no value of the "
                    "schema has and the request log cannot keep"
                )
            if column.values is None:
                return values, 0
            return values, len(present) - sum(map(column.values.__contains__, present))
        low, high = min(present), max(present)
        if column.kind == "float":
            # Within float32's range, and no NaN: the sum is NaN if one is (it cannot overflow here).
            if low >= -FLOAT32_MAX and high <= FLOAT32_MAX and math.isfinite(sum(present)):
                if kinds != {float}:  # integers, as floats
                    values = [None if v is None else float(v) for v in values]
                    present = list(filter(_is_not_none, values))
                return values, _outside_bounds(present, low, high, column)
        elif (float not in kinds or all(v.is_integer() for v in present if type(v) is float)) and (
            low >= INT64_MIN and high <= INT64_MAX
        ):
            if float in kinds:
                values = [None if v is None else int(v) for v in values]
                present = list(filter(_is_not_none, values))
            return values, _outside_bounds(present, low, high, column)
    typed = [None if value is None else _typed(value, column, row) for row, value in enumerate(values)]
    return typed, _outside_bounds(list(filter(_is_not_none, typed)), None, None, column)


def _typed(value, column: Column, row: int):
    """`value` as the column's type; raises BadRequest on a wrong type."""
    if column.kind == "string":
        if isinstance(value, str):
            return value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        if column.kind == "float":
            if abs(value) <= FLOAT32_MAX:  # NaN fails too
                return float(value)
            raise _outside_range(value, column, row)
        if isinstance(value, int) or value.is_integer():
            if INT64_MIN <= value <= INT64_MAX:
                return int(value)
            raise _outside_range(value, column, row)
    raise BadRequest(
        f"trip {row}: {column.name} must be {EXPECTED[column.kind]} (or null), got {type(value).__name__} {value!r}"
    )


def _outside_range(value, column: Column, row: int) -> BadRequest:
    return BadRequest(
        f"trip {row}: {column.name} is {value!r}, outside {RANGE[column.kind]}, which the model takes"
    )


def _outside_bounds(present: list, low, high, column: Column) -> int:
    """How many of the (typed, present) numbers lie outside the column's bounds; `low` and `high` are
    their minimum and maximum when known."""
    if column.low is None and column.high is None:
        return 0
    bottom = -math.inf if column.low is None else column.low
    top = math.inf if column.high is None else column.high
    if low is None:
        low, high = min(present), max(present)
    if bottom <= low and high <= top:  # the usual case: no pass over the values
        return 0
    return sum(1 for value in present if not bottom <= value <= top)
