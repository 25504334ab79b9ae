"""What validated data looked like, and the changes people accepted: the reference the units check compares
every new span with (components/units_validation.py), kept between runs.

Layout of the data reference folder (`outputs/data_reference/`, on Kubeflow the shared volume's):

    spans/span-N.json       a span that passed validation: its content digest and the sketch of its
                            per-trip relations (components/unit_changes.py), when, and by which run's span
    accepted_changes.json   changes of units a person accepted (`taxi-pipeline accept-change`): the column,
                            its factor, the span it starts at, who, when and why. Never removed by a run.

A span is validated once, when it first appears in a run's windows (or when its content changes); later
spans are compared with the validated spans before it, pooled, in the units of every change accepted
since. Writes are atomic (a temporary file renamed), so a killed run leaves each file whole or absent.
"""

import dataclasses
import datetime
import getpass
import hashlib
import json
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

from components import unit_changes

SPANS_DIR = "spans"
ACCEPTED_CHANGES_FILE = "accepted_changes.json"
# What the units check compares a span with (components/units_validation.py), as its results name it.
REFERENCE = "reference"
PREVIOUS_SPAN = "previous span"
SERVING = "serving"


class DataReferenceError(Exception):
    """A data reference that cannot be read or changed, explained: which file, and what to do."""


@dataclasses.dataclass(frozen=True)
class SpanRecord:
    """A validated span: its content (`digest`) and its relations' sketches ('a/b' -> Sketch)."""

    span: int
    digest: str
    rows: int
    recorded_at: str  # ISO 8601, UTC
    sketches: Mapping[str, unit_changes.Sketch]


@dataclasses.dataclass(frozen=True)
class AcceptedChange:
    """A person's decision that `column` is `factor` times what it was, from span `span` on."""

    column: str
    factor: float
    span: int
    reason: str
    accepted_by: str
    accepted_at: str  # ISO 8601, UTC
    found_by: str = ""  # the run and comparison that measured it

    def describe(self) -> str:
        return (
            f"{self.column} x{self.factor:.3f} from span {self.span}, accepted by {self.accepted_by} on "
            f"{self.accepted_at}: {self.reason}"
        )


def recorded_spans(folder: Path) -> dict[int, SpanRecord]:
    """Span -> its record, for every span validated so far ({} when none, or no folder)."""
    records = {}
    for path in sorted((folder / SPANS_DIR).glob("span-*.json")) if (folder / SPANS_DIR).is_dir() else []:
        try:
            content = json.loads(path.read_text())
            records[int(content["span"])] = SpanRecord(
                span=int(content["span"]),
                digest=content["digest"],
                rows=int(content["rows"]),
                recorded_at=content["recorded_at"],
                sketches={
                    name: unit_changes.Sketch(int(s["rows"]), tuple(float(q) for q in s["quantiles"]))
                    for name, s in content["sketches"].items()
                },
            )
        except (ValueError, KeyError, TypeError) as error:
            raise DataReferenceError(
                f"{path} is not a validated span's record ({type(error).__name__}: {error}). Remove the file: "
                "its span is then validated again, against the spans validated before it."
            ) from error
    return records


def record_span(folder: Path, record: SpanRecord) -> None:
    _write_json(
        folder / SPANS_DIR / f"span-{record.span}.json",
        {
            "span": record.span,
            "digest": record.digest,
            "rows": record.rows,
            "recorded_at": record.recorded_at,
            "sketches": {
                name: {"rows": s.rows, "quantiles": [round(q, 6) for q in s.quantiles]}
                for name, s in record.sketches.items()
            },
        },
    )


def accepted_changes(folder: Path | None) -> list[AcceptedChange]:
    """Every accepted change, oldest first ([] when none, or no folder)."""
    path = folder / ACCEPTED_CHANGES_FILE if folder else None
    if path is None or not path.is_file():
        return []
    try:
        return [AcceptedChange(**entry) for entry in json.loads(path.read_text())["accepted"]]
    except (ValueError, KeyError, TypeError) as error:
        raise DataReferenceError(
            f"{path} is not a record of accepted changes this version can read ({error}). It holds the "
            "changes of units people accepted: fix it by hand rather than delete it, or runs would stop on "
            "changes already accepted."
        ) from error


def accepted_changes_key(folder: Path | None) -> str:
    """A short hash of the accepted changes: part of the validator's cache key, so an acceptance reaches
    the next run even on unchanged data ('' when there are none)."""
    path = folder / ACCEPTED_CHANGES_FILE if folder else None
    if path is None or not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def accept_change(
    folder: Path,
    column: str,
    factor: float,
    span: int,
    reason: str,
    found_by: str = "",
    accepted_by: str | None = None,
) -> AcceptedChange:
    """Records that `column` is `factor` times what it was from `span` on; returns the record."""
    if not reason.strip():
        raise DataReferenceError(
            "An accepted change needs a reason (--reason): it is shown with every run it affects."
        )
    change = AcceptedChange(
        column=column,
        factor=round(factor, 4),
        span=span,
        reason=reason.strip(),
        accepted_by=accepted_by or _who(),
        accepted_at=now(),
        found_by=found_by,
    )
    existing = accepted_changes(folder)
    _write_json(
        folder / ACCEPTED_CHANGES_FILE, {"accepted": [dataclasses.asdict(c) for c in [*existing, change]]}
    )
    return change


def measured_change(
    unit_change_rows: Sequence[Mapping], column: str, run_id: str | None, natural_factor: float
) -> tuple[float, int, str]:
    """(factor, span, how it was found) of the change of units in `column` a run's units check stopped on
    (`reports.validation_results.unit_change_rows`): the oldest span where it crossed a bound and its median
    relation moved by more than `natural_factor` (what real drift reaches), and that factor, against the
    reference (else against the span before it).

    Raises DataReferenceError when there is nothing to accept: no change in `column`, one found only in the
    serving logs (a serving-side fault, which holds the push), or one whose median hardly moved (a mix of
    units in part of the rows: a new factor for the column would leave those rows, or the others, wrong).
    """
    run = f"The latest run ({run_id})"
    rows = [r for r in unit_change_rows if r["feature"] == column and r["crossed"] and r["gated"]]
    in_spans = [r for r in rows if r["span"] is not None]
    if not in_spans:
        where = " only in the serving logs, which hold the push: fix the serving side" if rows else ""
        factors = ", ".join(
            f"{r['comparison']} x{r['factor']:.3f}" for r in unit_change_rows if r["feature"] == column
        )
        raise DataReferenceError(
            f"{run} found no change of units in {column} in the training data to accept{where}. "
            f"Its measures of {column}: {factors or 'none'}."
        )
    whole = [r for r in in_spans if max(r["factor"], 1 / r["factor"]) > natural_factor]
    if not whole:
        raise DataReferenceError(
            f"{run} found {column} changed in part of the rows only ({in_spans[0]['comparison']}: "
            f"{', '.join(in_spans[0]['crossed'])} crossed, the median relation x{in_spans[0]['factor']:.3f}, "
            f"within the x{natural_factor:.2f} real data shows). A mix of units in one column cannot be accepted "
            "as a new factor: fix the rows upstream."
        )
    span = min(r["span"] for r in whole)
    at_span = sorted((r for r in whole if r["span"] == span), key=lambda r: r["kind"] != REFERENCE)[0]
    return at_span["factor"], span, f"run {run_id}: {at_span['comparison']}: x{at_span['factor']:.3f}"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _who() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def in_units_of(
    sketches: Mapping[str, unit_changes.Sketch], span: int, later: float, changes: Sequence[AcceptedChange]
) -> dict[str, unit_changes.Sketch]:
    """`sketches` of span `span` as they would be in the units of span `later` (float('inf'): now): every
    change accepted after `span`, up to `later`, applied (undone when `later` is the older)."""
    adjusted = dict(sketches)
    for change in changes:
        if span < change.span <= later:
            adjusted = unit_changes.rescaled(adjusted, change.column, change.factor)
        elif later < change.span <= span:
            adjusted = unit_changes.rescaled(adjusted, change.column, 1 / change.factor)
    return adjusted


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(content, indent=1) + "\n")
    temporary.replace(path)
