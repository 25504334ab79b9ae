"""The units check of the validator (components/data_validation.py): every span that arrived since the last
validated run, compared span by span with the reference and with the span before it, and the serving logs
with the training window; anomalies where an amount's relations moved (components/unit_changes.py).

Each span of the run's windows is read apart, from the links ExampleGen reads (`<example_gen_input>/span-N/
{train,eval}/span-S-<file>.csv`, inputs/layout.py), its rows sampled by hash. A span is new when the data
reference (components/data_reference.py) holds no record of it with the same content. Each new span is
compared with:

- the reference: the validated spans just before it (a training window's worth), pooled; before any span
  was validated (a first run, or no data reference folder), the run's own training window, taken as it is;
- the span before it in the window (span-to-span drift);

each in the units of the changes people accepted since (`taxi-pipeline accept-change`), so an accepted
change passes and anything else still shows. The serving logs are compared with the training window.
When the training data passes, the new spans are recorded as validated.
"""

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from components import data_reference, unit_changes
from components.data_reference import PREVIOUS_SPAN, REFERENCE, SERVING  # the kinds of comparison
from config import pipeline as pipeline_config

_WINDOW_LINK = re.compile(rf"^{re.escape(pipeline_config.SPAN_FOLDER_PREFIX)}(\d+)-")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What the validator's execution properties say about the units check."""

    amounts: Sequence[str]
    bounds: unit_changes.Bounds
    min_examples: int
    sample_rows: int
    sample_seed: int
    reference_spans: int
    example_gen_input: str
    data_reference_dir: (
        Path | None
    )  # None: nothing kept between runs (each run's training window is the reference)
    serving_logs: str | None


def settings_json(data: pipeline_config.Data) -> str:
    """The units check's part of `data`, as the validator's `units_check` execution property ("" = off)."""
    if not data.unit_change_amounts:
        return ""
    return json.dumps(
        {
            "amounts": list(data.unit_change_amounts),
            "bounds": dataclasses.asdict(unit_changes.Bounds.of(data)),
            "sample_rows": data.unit_change_sample_rows,
            "sample_seed": data.unit_change_sample_seed,
            "reference_spans": data.reference_spans,
        }
    )


def settings_of(exec_properties: Mapping) -> Settings | None:
    """The validator's execution properties as Settings; None when the units check is off."""
    if not exec_properties.get("units_check") or not exec_properties.get("example_gen_input"):
        return None
    check_settings = json.loads(exec_properties["units_check"])
    return Settings(
        amounts=tuple(check_settings["amounts"]),
        bounds=unit_changes.Bounds(**check_settings["bounds"]),
        min_examples=exec_properties["min_examples_to_gate"],
        sample_rows=check_settings["sample_rows"],
        sample_seed=check_settings["sample_seed"],
        reference_spans=check_settings["reference_spans"],
        example_gen_input=exec_properties["example_gen_input"],
        data_reference_dir=Path(exec_properties["data_reference_dir"])
        if exec_properties.get("data_reference_dir")
        else None,
        serving_logs=exec_properties.get("serving_logs") or None,
    )


def describe(comparison: "Comparison", amount: str, crossed: Mapping[str, str]) -> str:
    """The anomaly's description: what was compared, what moved, and what to do."""
    what = "the serving logs" if comparison.span is None else f"span {comparison.span}"
    part = "" if "factor" in crossed else ", in part of the rows"
    return (
        f"{what} against {comparison.against}: {amount}, per trip relative to the other amounts: "
        f"{'; '.join(crossed.values())}. The units of {amount} seem to have changed upstream{part}. "
        f"Fix the data, or if the change is real, accept it: `taxi-pipeline accept-change --column {amount} "
        '--reason "..."`.'
    )


@dataclasses.dataclass
class _Span:
    number: int
    split: str  # the ExampleGen split whose anomalies report it
    columns: dict[str, np.ndarray]  # sampled
    rows: int  # before sampling
    digest: str
    sketches: dict[str, unit_changes.Sketch]


@dataclasses.dataclass
class Comparison:
    """One span (or the serving logs) against one reference: what every amount did, and what crossed."""

    span: int | None  # None: the serving logs
    split: str
    kind: str  # REFERENCE, PREVIOUS_SPAN or SERVING
    against: str  # what it was compared with, for people
    rows: int
    reference_rows: int
    gated: bool
    changes: dict[str, unit_changes.Change]
    crossed: dict[str, dict[str, str]]  # amount -> the statistics that crossed, in words (gated or not)

    def as_json(self) -> dict:
        return {
            "span": self.span,
            "split": self.split,
            "kind": self.kind,
            "against": self.against,
            "rows": self.rows,
            "reference_rows": self.reference_rows,
            "gated": self.gated,
            "changes": {
                amount: {
                    "factor": round(c.factor, 4),
                    "factor_bound": round(c.factor_bound, 4),
                    "ks": round(c.ks, 4),
                    "ks_bound": round(c.ks_bound, 4),
                    "outside": round(c.outside, 4),
                    "outside_bound": round(c.outside_bound, 4),
                    "crossed": self.crossed.get(amount, {}),
                }
                for amount, c in self.changes.items()
            },
        }


@dataclasses.dataclass
class Result:
    """The units check of one run: its comparisons, and what it would record as validated."""

    comparisons: list[Comparison]
    reference: str  # how the reference was made, for people
    new_spans: list[int]
    accepted: list[data_reference.AcceptedChange]  # the accepted changes that applied to a comparison
    to_record: list[data_reference.SpanRecord]
    training_spans: list[int] = dataclasses.field(default_factory=list)
    every_accepted: list[data_reference.AcceptedChange] = dataclasses.field(default_factory=list)
    # The drift and skew anomalies an accepted change explains (components/data_validation.py).
    accepted_distances: list[dict] = dataclasses.field(default_factory=list)

    def as_json(self, bounds: unit_changes.Bounds, recorded: bool) -> dict:
        return {
            "bounds": dataclasses.asdict(bounds),
            "reference": self.reference,
            "new_spans": self.new_spans,
            "recorded_spans": [r.span for r in self.to_record] if recorded else [],
            "accepted_changes": [dataclasses.asdict(c) for c in self.accepted],
            "accepted_distances": self.accepted_distances,
            "comparisons": [c.as_json() for c in self.comparisons],
        }


def check(settings: Settings, run_span: int, splits: "WindowSplits") -> Result:
    """Compares every new span of the run's windows, and the serving logs; records nothing (see `record`)."""
    window = _read_window(settings, run_span, splits)
    train_split = splits.train
    records = (
        data_reference.recorded_spans(settings.data_reference_dir) if settings.data_reference_dir else {}
    )
    accepted = data_reference.accepted_changes(settings.data_reference_dir)
    training = [s for s in window if s.split == train_split]
    if records:
        new = [s for s in window if s.number not in records or records[s.number].digest != s.digest]
        reference = "the spans validated before each new span, pooled"
    else:
        new = [s for s in window if s.split != train_split]
        reference = (
            f"the training window {_spans([s.number for s in training])}, taken as it is: no span was validated before"
            if training
            else "none: no span was validated before and the window has no training span"
        )
    comparisons, applied = [], set()
    for span in new:
        previous = max((s for s in window if s.number < span.number), key=lambda s: s.number, default=None)
        if records:
            before = _recorded_before(records, span.number, settings.reference_spans)
            parts = [(r.span, r.sketches) for r in before]
            label = f"the reference: validated spans {_spans([r.span for r in before])}"
        else:
            parts = [(s.number, s.sketches) for s in training]
            label = f"the training window {_spans([s.number for s in training])}"
        if parts:
            comparisons.append(
                _compare(settings, span, REFERENCE, label, parts, span.number, accepted, applied)
            )
        if previous is not None:
            comparisons.append(
                _compare(
                    settings,
                    span,
                    PREVIOUS_SPAN,
                    f"span {previous.number}",
                    [(previous.number, previous.sketches)],
                    span.number,
                    accepted,
                    applied,
                )
            )
    serving = _serving(settings)
    if serving is not None and training:
        comparisons.append(
            _compare(
                settings,
                serving,
                SERVING,
                f"the training window {_spans([s.number for s in training])}",
                [(s.number, s.sketches) for s in training],
                float("inf"),
                accepted,
                applied,
            )
        )
    to_record = [
        data_reference.SpanRecord(s.number, s.digest, s.rows, data_reference.now(), s.sketches)
        for s in (window if not records else new)
    ]
    return Result(
        comparisons=comparisons,
        reference=reference,
        new_spans=[s.number for s in new],
        accepted=[c for c in accepted if c in applied],
        to_record=to_record,
        training_spans=[s.number for s in training],
        every_accepted=list(accepted),
    )


def record(settings: Settings, result: Result) -> None:
    """Records the new spans as validated (call only when the run's training data passed)."""
    if settings.data_reference_dir is None:
        return
    for span_record in result.to_record:
        data_reference.record_span(settings.data_reference_dir, span_record)


def _compare(
    settings: Settings,
    span: _Span,
    kind: str,
    against: str,
    parts: list[tuple[int, Mapping[str, unit_changes.Sketch]]],
    units_of: float,
    accepted: Sequence[data_reference.AcceptedChange],
    applied: set,
) -> Comparison:
    """`span` against the pooled `parts` (span number, sketches), each in the units of span `units_of`."""
    in_units = []
    for number, sketches in parts:
        in_units.append(data_reference.in_units_of(sketches, number, units_of, accepted))
        applied.update(c for c in accepted if min(number, units_of) < c.span <= max(number, units_of))
    reference = unit_changes.pooled(in_units)
    bounds = settings.bounds.against(previous_span=kind == PREVIOUS_SPAN)
    changes = unit_changes.compare(span.columns, reference, settings.amounts, bounds)
    reference_rows = max((s.rows for s in reference.values()), default=0)
    return Comparison(
        span=None if kind == SERVING else span.number,
        split=span.split,
        kind=kind,
        against=against,
        rows=span.rows,
        reference_rows=reference_rows,
        gated=min(span.rows, reference_rows) >= settings.min_examples,
        changes=changes,
        crossed={a: c.crossed(bounds) for a, c in changes.items() if c.crossed(bounds)},
    )


def _recorded_before(records: Mapping[int, data_reference.SpanRecord], span: int, count: int) -> list:
    """The `count` validated spans nearest before `span`, oldest first; if none is before it (older data
    added later), those nearest after it."""
    before = sorted(n for n in records if n < span)[-count:]
    chosen = before or sorted(n for n in records if n > span)[:count]
    return [records[n] for n in chosen]


def _spans(numbers: Sequence[int]) -> str:
    numbers = sorted(numbers)
    return f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])


@dataclasses.dataclass(frozen=True)
class WindowSplits:
    """ExampleGen's split names: the windows read, and those whose anomalies report a span (the run's own
    span in `current`, the one before it in `previous`, other evaluated spans in `eval`)."""

    train: str
    eval: str
    current: str
    previous: str


def _read_window(settings: Settings, run_span: int, splits: WindowSplits) -> list[_Span]:
    """Every span of the run's training and evaluation windows, oldest first, each read apart."""
    folder = Path(settings.example_gen_input) / f"{pipeline_config.SPAN_FOLDER_PREFIX}{run_span}"
    files: dict[int, tuple[str, list[Path]]] = {}
    for split in (splits.train, splits.eval):
        for path in sorted((folder / split).glob("*.csv")):
            match = _WINDOW_LINK.match(path.name)
            if match is None:
                raise ValueError(
                    f"{path}: not named {pipeline_config.SPAN_FOLDER_PREFIX}<span>-<file> as inputs/layout.py "
                    "links each span's files; lay the data out again (`taxi-pipeline run` does)."
                )
            files.setdefault(int(match.group(1)), (split, []))[1].append(path)
    numbers = sorted(files)
    previous = max((n for n in numbers if n < run_span), default=None)
    labels = {run_span: splits.current, previous: splits.previous}
    return [
        _span(settings, number, labels.get(number, split) if split == splits.eval else split, paths)
        for number, (split, paths) in sorted(files.items())
    ]


def _span(settings: Settings, number: int, split: str, paths: list[Path]) -> _Span:
    columns = unit_changes.read_columns(paths, settings.amounts)
    sampled = unit_changes.sample_by_hash(columns, settings.sample_rows, settings.sample_seed)
    return _Span(
        number=number,
        split=split,
        columns=sampled,
        rows=len(next(iter(columns.values()))) if columns else 0,
        digest=unit_changes.digest(columns),
        sketches=unit_changes.sketches(sampled, settings.amounts),
    )


def _serving(settings: Settings) -> _Span | None:
    if not settings.serving_logs:
        return None
    paths = sorted(Path(settings.serving_logs).glob("*.csv"))
    if not paths:
        return None
    return _span(settings, 0, pipeline_config.SERVING_SPLIT, paths)
