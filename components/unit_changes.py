"""A change of units upstream (fares in another currency, miles as kilometres, seconds as minutes, tips in
cents), in a whole column or in part of its rows (a second feed mixed in): what statistics of a single
column cannot tell from the world changing.

A factor k on a column moves its whole distribution by k, which Jensen-Shannon divergence sees only when k
is large: between half-years of the sample the amounts' own distributions move as much as a factor of 1.5
would. But a change of units moves the column against the amounts it is measured with, and a trip's fare,
miles, seconds and tip move together. So each amount is judged by its per-trip relations to the others,
log(a / b) over the rows where both are positive, three ways, each taken as the median over the amount's
relations (a factor on one amount moves all of its relations and one of each other amount's):

- **factor**: how much the median relation moved (a whole column in other units);
- **ks**: the Kolmogorov-Smirnov distance between the relation's distributions, the largest share of rows
  that moved past any value (a mixture: k on a share p of rows gives about p for a large k), against a
  bound that grows as the rows get fewer (on 400 rows noise alone reaches 0.15);
- **outside**: the share of rows whose relation lies outside the reference's central 99 % (a few rows
  with a large factor, cents among dollars).

The reference side is a sketch (`Sketch`: 199 quantiles of each relation, and its row count), so what a
model learned from can be recorded in a few kilobytes (components/data_reference.py) and pooled over spans.
Rows are sampled by a keyed hash of their content, not taken first-in-file.

    .venv/bin/python -m components.unit_changes outputs/data/checked/spans            # the real spans
    .venv/bin/python -m components.unit_changes outputs/data/checked/spans --mixtures # what is caught

schema/README.md ("Changes of units") has the figures on the sample's spans and where the bounds come from.
"""

import argparse
import dataclasses
import hashlib
import itertools
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

# The reference's relations are kept as these quantiles: the KS distance to a sketch is exact to 0.005,
# and the first and last are the range whose outside share is measured.
SKETCH_QUANTILES = np.linspace(0.005, 0.995, 199)
_SAMPLE_KEY = 0x9E3779B97F4A7C15  # splitmix64's increment: mixes the hash's seed into every value


@dataclasses.dataclass(frozen=True)
class Bounds:
    """When an amount's relations moved too far: the median by more than `max_factor` either way (or
    `factor_z` standard errors, where more); a KS distance above max(`ks_floor`, `ks_z` * sqrt(1/n + 1/m));
    a share outside the reference's central 99 % above max(`outside_floor`, 1 % + `outside_z` standard
    errors of a 1 % share on n rows), judged on references of `outside_min_reference_rows` at least. n, m:
    the rows of the two sides. config/pipeline.py has the values and schema/README.md why."""

    max_factor: float
    factor_z: float
    ks_floor: float
    ks_z: float
    outside_floor: float
    outside_z: float
    outside_min_reference_rows: int
    previous_span_ks_floor: float  # `ks_floor` against the span before alone (real half-year moves)

    @classmethod
    def of(cls, data) -> "Bounds":
        """The bounds a `config.pipeline.Data` sets."""
        return cls(
            max_factor=data.max_unit_change,
            factor_z=data.unit_change_factor_z,
            ks_floor=data.unit_change_ks_floor,
            ks_z=data.unit_change_ks_z,
            outside_floor=data.unit_change_outside_floor,
            outside_z=data.unit_change_outside_z,
            outside_min_reference_rows=data.unit_change_outside_min_reference_rows,
            previous_span_ks_floor=data.unit_change_previous_span_ks_floor,
        )

    def against(self, previous_span: bool) -> "Bounds":
        """These bounds for a comparison with the span before alone (`previous_span`) or a reference."""
        return dataclasses.replace(self, ks_floor=self.previous_span_ks_floor) if previous_span else self

    def factor_bound(self, reference: "Sketch", rows: int) -> float:
        """The bound on the median relation's factor: `max_factor` (what real drift reaches), widened by
        `factor_z` standard errors of the difference of two medians (wide on few rows: 130 tips on 400 trips)."""
        # A median's standard error is 0.5 / sqrt(rows) divided by the density there, read off the quantiles
        # around it: a relation with two modes (the 2013 miles) has little density at its median, which
        # then jumps between them from one sample to the next.
        around = np.interp([0.45, 0.55], SKETCH_QUANTILES, reference.quantiles)
        quantile_slope = (around[1] - around[0]) / 0.1
        error = 0.5 * quantile_slope * math.sqrt(1 / rows + 1 / reference.rows)
        return self.max_factor * math.exp(self.factor_z * error)

    def ks_bound(self, rows: int, reference_rows: int) -> float:
        return max(self.ks_floor, self.ks_z * math.sqrt(1 / rows + 1 / reference_rows))

    def outside_bound(self, rows: int, reference_rows: int) -> float:
        """1 (never crossed) when the reference is too small to know its central 99 %: on fewer than
        `outside_min_reference_rows`, its 0.5 % tails are a handful of rows."""
        if reference_rows < self.outside_min_reference_rows:
            return 1.0
        outside = 1 - (SKETCH_QUANTILES[-1] - SKETCH_QUANTILES[0])
        return max(self.outside_floor, outside + self.outside_z * math.sqrt(outside * (1 - outside) / rows))


@dataclasses.dataclass(frozen=True)
class Sketch:
    """One relation's distribution: its SKETCH_QUANTILES of log(a / b), over `rows` rows."""

    rows: int
    quantiles: tuple[float, ...]

    def cdf(self, values: np.ndarray, side: str = "right") -> np.ndarray:
        """The share of rows at or below each value ("right"), or strictly below it ("left"), linear between
        quantiles; where several quantiles share one value (many trips tip exactly 20 %), it jumps there."""
        quantiles = np.asarray(self.quantiles)
        distinct, first = np.unique(quantiles, return_index=True)
        last = np.searchsorted(quantiles, distinct, side="right") - 1
        levels = np.column_stack([SKETCH_QUANTILES[first], SKETCH_QUANTILES[last]]).ravel()
        shares = np.interp(values, np.repeat(distinct, 2), levels, left=0.0, right=1.0)
        index = np.minimum(np.searchsorted(distinct, values), len(distinct) - 1)
        exact = distinct[index] == values
        shares[exact] = SKETCH_QUANTILES[last if side == "right" else first][index[exact]]
        return shares

    def shifted(self, log_factor: float) -> "Sketch":
        return Sketch(self.rows, tuple(q + log_factor for q in self.quantiles))


@dataclasses.dataclass(frozen=True)
class Change:
    """How one amount's relations moved from a reference to the current rows (medians over relations)."""

    factor: float  # the median relation's change: k for a factor k on the whole column
    factor_bound: float  # either way
    ks: float
    ks_bound: float
    outside: float
    outside_bound: float
    rows: int  # the current side's rows in the amount's relations (the smallest)

    def crossed(self, bounds: Bounds) -> dict[str, str]:
        """Each statistic that crossed its bound ("factor", "ks", "outside") -> it in words; {} when none."""
        crossed = {}
        if size_of_change(self.factor) > self.factor_bound:
            crossed["factor"] = (
                f"its median relation changed by x{self.factor:.2f} (bound x{self.factor_bound:.2f} on {self.rows} rows)"
            )
        if self.ks > self.ks_bound:
            crossed["ks"] = (
                f"{self.ks:.0%} of rows moved (KS distance {self.ks:.3f}, bound {self.ks_bound:.3f} on {self.rows} rows)"
            )
        if self.outside > self.outside_bound:
            crossed["outside"] = (
                f"{self.outside:.1%} of rows lie outside the reference's central 99 % (bound {self.outside_bound:.1%})"
            )
        return crossed


def pairs(amounts: Sequence[str]) -> list[tuple[str, str]]:
    return list(itertools.combinations(amounts, 2))


def pair_name(pair: tuple[str, str]) -> str:
    return f"{pair[0]}/{pair[1]}"


def relations(columns: Mapping[str, np.ndarray], amounts: Sequence[str]) -> dict[str, np.ndarray]:
    """'a/b' -> log(a / b) over the rows where both are positive, for every pair of `amounts` present in
    `columns` (amount -> values, one per row, NaN where missing)."""
    found = {}
    for a, b in pairs([amount for amount in amounts if amount in columns]):
        x, y = columns[a], columns[b]
        with np.errstate(invalid="ignore"):
            usable = (x > 0) & (y > 0)
        found[pair_name((a, b))] = np.log(x[usable] / y[usable])
    return found


def sketches(columns: Mapping[str, np.ndarray], amounts: Sequence[str]) -> dict[str, Sketch]:
    """'a/b' -> the Sketch of its relation; relations without a row are left out."""
    return {
        name: Sketch(len(values), tuple(float(q) for q in np.quantile(values, SKETCH_QUANTILES)))
        for name, values in relations(columns, amounts).items()
        if len(values)
    }


def pooled(parts: Sequence[Mapping[str, Sketch]]) -> dict[str, Sketch]:
    """The sketches of the rows of all `parts` together (each relation's CDFs mixed by their rows)."""
    pooled_sketches = {}
    for name in sorted({name for part in parts for name in part}):
        found = [part[name] for part in parts if name in part]
        if len(found) == 1:
            pooled_sketches[name] = found[0]
            continue
        grid = np.unique(np.concatenate([s.quantiles for s in found]))
        rows = sum(s.rows for s in found)
        # The mixed CDF just below and at each value, so a value many rows share stays one value.
        below = sum(s.rows * s.cdf(grid, "left") for s in found) / rows
        at = sum(s.rows * s.cdf(grid, "right") for s in found) / rows
        levels = np.column_stack([below, at]).ravel()
        quantiles = np.interp(SKETCH_QUANTILES, np.maximum.accumulate(levels), np.repeat(grid, 2))
        pooled_sketches[name] = Sketch(rows, tuple(float(q) for q in quantiles))
    return pooled_sketches


def rescaled(reference: Mapping[str, Sketch], amount: str, factor: float) -> dict[str, Sketch]:
    """`reference` as it would be with `amount` multiplied by `factor` (an accepted change of units)."""
    log_factor = math.log(factor)
    return {
        name: sketch.shifted(log_factor if name.split("/")[0] == amount else -log_factor)
        if amount in name.split("/")
        else sketch
        for name, sketch in reference.items()
    }


def compare(
    columns: Mapping[str, np.ndarray],
    reference: Mapping[str, Sketch],
    amounts: Sequence[str],
    bounds: Bounds,
) -> dict[str, Change]:
    """Amount -> how its relations moved from `reference` to the rows in `columns`. An amount with no
    relation on both sides is left out.

    A change in one amount moves one relation of every other: with three amounts (the serving logs have no
    tips) that is half of theirs, which the median cannot outvote. So the amount that moved most is named
    first, and every other one is then judged without its relations to the named ones where they are half
    of its relations or more, until no other crosses a bound.
    """
    per_pair = {}
    for name, values in relations(columns, amounts).items():
        if name in reference and len(values):
            per_pair[name] = _pair_change(np.sort(values), reference[name], bounds)
    named: list[str] = []
    while True:
        changes = {
            amount: change
            for amount in amounts
            if (change := _amount_change(amount, per_pair, [] if amount in named else named)) is not None
        }
        crossing = [a for a in changes if a not in named and changes[a].crossed(bounds)]
        if not crossing:
            return changes
        # The one whose every relation moved: a change elsewhere moves one of them.
        named.append(
            max(
                crossing,
                key=lambda a: min(c.excess() for n, c in per_pair.items() if a in n.split("/")),
            )
        )


def _amount_change(amount: str, per_pair: Mapping[str, tuple], named: Sequence[str]) -> Change | None:
    """The medians over `amount`'s relations; without those to `named` amounts when they are at least half
    (fewer, the median outvotes them: dropping them would leave it the noisier rest)."""
    found = [(name, change) for name, change in per_pair.items() if amount in name.split("/")]
    to_named = [(name, change) for name, change in found if set(name.split("/")) & set(named)]
    if 2 * len(to_named) >= len(found):
        found = [pair for pair in found if pair not in to_named]
    if not found:
        return None
    oriented = [c.shift if name.split("/")[0] == amount else -c.shift for name, c in found]

    def median(field: str) -> float:
        return float(np.median([getattr(c, field) for _, c in found]))

    return Change(
        factor=math.exp(float(np.median(oriented))),
        factor_bound=math.exp(median("log_factor_bound")),
        ks=median("ks"),
        ks_bound=median("ks_bound"),
        outside=median("outside"),
        outside_bound=median("outside_bound"),
        rows=min(c.rows for _, c in found),
    )


@dataclasses.dataclass(frozen=True)
class _PairChange:
    """How one relation moved: its median (in logs), KS distance and outside share, each with its bound."""

    shift: float
    log_factor_bound: float
    ks: float
    ks_bound: float
    outside: float
    outside_bound: float
    rows: int

    def excess(self) -> float:
        """The largest of the three statistics as a share of its bound (above 1: it crossed)."""
        return max(
            abs(self.shift) / self.log_factor_bound,
            self.ks / self.ks_bound,
            self.outside / self.outside_bound,
        )


def _pair_change(values: np.ndarray, reference: Sketch, bounds: Bounds) -> _PairChange:
    """How one relation's sorted `values` moved from `reference`."""
    rows = len(values)
    # Both CDFs at and just below each value: ties (tips of exactly 20 %) are jumps on either side.
    after = np.searchsorted(values, values, side="right") / rows
    before = np.searchsorted(values, values, side="left") / rows
    ks = float(
        max(
            np.max(np.abs(after - reference.cdf(values, "right"))),
            np.max(np.abs(before - reference.cdf(values, "left"))),
        )
    )
    low, high = reference.quantiles[0], reference.quantiles[-1]
    return _PairChange(
        shift=float(np.median(values)) - float(np.interp(0.5, SKETCH_QUANTILES, reference.quantiles)),
        log_factor_bound=math.log(bounds.factor_bound(reference, rows)),
        ks=ks,
        ks_bound=bounds.ks_bound(rows, reference.rows),
        outside=float(np.mean((values < low) | (values > high))),
        outside_bound=bounds.outside_bound(rows, reference.rows),
        rows=rows,
    )


def size_of_change(factor: float) -> float:
    """How far a factor is from no change, either way: 2 and 0.5 are both 2."""
    return max(factor, 1 / factor)


def sample_by_hash(columns: Mapping[str, np.ndarray], max_rows: int, seed: int) -> dict[str, np.ndarray]:
    """At most `max_rows` rows of `columns`: those with the smallest keyed hash of their values, so the
    same rows are kept however the file orders them, and any part of the file can be chosen."""
    rows = len(next(iter(columns.values()))) if columns else 0
    if rows <= max_rows:
        return dict(columns)
    ranks = _row_hashes(columns, seed)
    kept = np.sort(np.argpartition(ranks, max_rows)[:max_rows])
    return {name: values[kept] for name, values in columns.items()}


def _row_hashes(columns: Mapping[str, np.ndarray], seed: int) -> np.ndarray:
    """A 64-bit hash per row of the columns' values (splitmix64 over each value's bits, keyed by `seed`)."""
    state = np.full(len(next(iter(columns.values()))), np.uint64(seed), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in sorted(columns):
            bits = np.ascontiguousarray(columns[name], dtype=np.float64).view(np.uint64)
            state = _mix(state ^ bits)
    return state


def _mix(values: np.ndarray) -> np.ndarray:
    values = values + np.uint64(_SAMPLE_KEY)
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def digest(columns: Mapping[str, np.ndarray]) -> str:
    """A short hash of the columns' values: equal for the same data, whatever the files' times."""
    hashed = hashlib.sha256()
    for name in sorted(columns):
        hashed.update(name.encode() + b"\0" + np.ascontiguousarray(columns[name], dtype=np.float64).tobytes())
    return hashed.hexdigest()[:16]


def read_columns(files: Sequence[Path], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Column -> values (float64, NaN where empty or not a number) of every row of CSV files with a
    header, for the `names` a file has (a column no file has is left out)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    parts: dict[str, list[np.ndarray]] = {}
    for path in files:
        header = pa_csv.open_csv(path).schema.names
        present = [name for name in names if name in header]
        table = pa_csv.read_csv(
            path,
            convert_options=pa_csv.ConvertOptions(
                include_columns=present, column_types={name: pa.string() for name in present}
            ),
        )
        for name in present:
            text = pc.utf8_trim_whitespace(table[name])
            numbers = pc.cast(pc.if_else(pc.match_substring_regex(text, _NUMBER), text, None), pa.float64())
            parts.setdefault(name, []).append(np.asarray(pc.fill_null(numbers, math.nan), dtype=np.float64))
    return {name: np.concatenate(values) for name, values in parts.items()}


# What a CSV cell holds when it is a number CsvExampleGen would parse as one (anything else: no scale).
_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def main(argv: list[str]) -> int:
    """Prints, for `span-N/*.csv` folders, each span against the one before it and against the six before
    it pooled; with --mixtures, the smallest share of rows in other units each factor is caught at."""
    from config import pipeline as pipeline_config

    parser = argparse.ArgumentParser(prog="python -m components.unit_changes", description=main.__doc__)
    parser.add_argument(
        "spans_dir", help=f"a folder of {pipeline_config.SPAN_FOLDER_PREFIX}N/ folders of CSVs"
    )
    parser.add_argument("--mixtures", action="store_true")
    args = parser.parse_args(argv)
    folders = sorted(
        Path(args.spans_dir).glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*"),
        key=lambda folder: int(folder.name[len(pipeline_config.SPAN_FOLDER_PREFIX) :]),
    )
    spans = {
        int(folder.name[len(pipeline_config.SPAN_FOLDER_PREFIX) :]): read_columns(
            sorted(folder.glob("*.csv")), pipeline_config.UNIT_CHANGE_AMOUNTS
        )
        for folder in folders
    }
    measure = mixtures_caught if args.mixtures else natural_changes
    for line in measure(spans, pipeline_config.UNIT_CHANGE_AMOUNTS, Bounds.of(pipeline_config.Data())):
        print(line)
    return 0


@dataclasses.dataclass(frozen=True)
class Reference:
    """What a span is compared with: the span before it alone (`previous_span`), or spans pooled."""

    label: str
    sketches: Mapping[str, Sketch]
    previous_span: bool


def real_comparisons(spans: Mapping[int, Mapping[str, np.ndarray]], window: int = 6):
    """(span, current columns, [Reference]) for every span after the first, as a run judges a new span:
    against the span before it, and against up to `window` spans before it pooled (a run always has such
    a reference: its training window, or the spans validated before)."""
    from config import pipeline as pipeline_config

    amounts = pipeline_config.UNIT_CHANGE_AMOUNTS
    numbers = sorted(spans)
    per_span = {number: sketches(spans[number], amounts) for number in numbers}
    for index in range(1, len(numbers)):
        before = numbers[max(0, index - window) : index]
        span_range = f"{before[0]}-{before[-1]}" if len(before) > 1 else f"{before[0]} pooled"
        references = [
            Reference(f"{numbers[index]} vs {before[-1]}", per_span[before[-1]], previous_span=True),
            Reference(f"{numbers[index]} vs {span_range}", pooled([per_span[n] for n in before]), False),
        ]
        yield numbers[index], spans[numbers[index]], references


def _largest(
    spans, amounts: Sequence[str], bounds: Bounds, lines: list[str] | None = None
) -> dict[str, float]:
    """Each statistic's largest share of its bound over every real comparison (the factor's in logs);
    each comparison's line appended to `lines`."""
    largest = {"factor": 0.0, "ks": 0.0, "outside": 0.0}
    for _, current, references in real_comparisons(spans):
        for reference in references:
            changes = compare(current, reference.sketches, amounts, bounds.against(reference.previous_span))
            cells = []
            for amount in amounts:
                change = changes[amount]
                cells.append(
                    f"x{change.factor:.3f} ks {change.ks:.3f}/{change.ks_bound:.3f} out {change.outside:.3f}"
                )
                largest["factor"] = max(
                    largest["factor"], math.log(size_of_change(change.factor)) / math.log(change.factor_bound)
                )
                largest["ks"] = max(largest["ks"], change.ks / change.ks_bound)
                largest["outside"] = max(largest["outside"], change.outside / change.outside_bound)
            if lines is not None:
                lines.append(f"{reference.label:<22}" + "".join(f"{cell:>32}" for cell in cells))
    return largest


def _described(largest: dict[str, float]) -> str:
    return "; ".join(
        f"{name} {value:.2f} of its bound (margin x{1 / value:.2f})" for name, value in largest.items()
    )


# Fewer rows than the sample's: every k-th row, from each of the first offsets, as spans of smaller data.
SUBSAMPLES = {2: 2, 3: 3, 5: 4, 7: 4, 9: 4}


def natural_changes(spans, amounts: Sequence[str], bounds: Bounds) -> list[str]:
    """One line per comparison of real spans: each amount's factor, KS and outside share (with the KS
    bound); then each statistic's largest share of its bound (under 1: no false alarm; 1 / it: the margin,
    the factor's in logs), on the spans and on every k-th row of them (spans of a few hundred rows)."""
    lines = [f"{'comparison':<22}" + "".join(f"{a:>32}" for a in amounts)]
    lines.append(f"largest: {_described(_largest(spans, amounts, bounds, lines))}")
    worst = {"factor": 0.0, "ks": 0.0, "outside": 0.0}
    for every, offsets in SUBSAMPLES.items():
        for offset in range(offsets):
            thinned = {n: {a: v[offset::every] for a, v in columns.items()} for n, columns in spans.items()}
            for name, value in _largest(thinned, amounts, bounds).items():
                worst[name] = max(worst[name], value)
    lines.append(f"largest on every 2nd to 9th row: {_described(worst)}")
    return lines


MIXTURE_FACTORS = (1.25, 1.5, 1.609, 2.0, 3.0, 10.0, 60.0, 100.0)
MIXTURE_SHARES = (1.0, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05, 0.03)


def with_units_changed(
    columns: Mapping[str, np.ndarray], amount: str, factor: float, share: float, seed: int
):
    """`columns` with `amount` multiplied by `factor` in a hash-chosen `share` of the rows."""
    ranks = _row_hashes(columns, seed).astype(np.float64) / 2.0**64
    changed = dict(columns)
    changed[amount] = np.where(ranks < share, columns[amount] * factor, columns[amount])
    return changed


def is_caught(columns, references, amount: str, amounts: Sequence[str], bounds: Bounds) -> bool:
    """Whether a run stops a span with these rows on `amount`: against any of its references."""
    for reference in references:
        judged = bounds.against(reference.previous_span)
        if compare(columns, reference.sketches, amounts, judged)[amount].crossed(judged):
            return True
    return False


def mixtures_caught(spans, amounts: Sequence[str], bounds: Bounds) -> list[str]:
    """Per amount and factor (either way), the smallest share of rows in other units (and every larger
    one) that stops every real span, on the spans of at least 1,000 rows and on the smaller ones ('-': not
    even all rows)."""
    judged = list(real_comparisons(spans))
    lines = []
    for large in (True, False):
        lines.append("spans of at least 1,000 rows" if large else "spans of fewer than 1,000 rows")
        chosen = [j for j in judged if (len(next(iter(j[1].values()))) >= 1000) == large]
        for amount in amounts:
            cells = []
            for factor in MIXTURE_FACTORS:
                smallest = "-"
                for share in MIXTURE_SHARES:  # largest first
                    if not all(
                        is_caught(
                            with_units_changed(current, amount, k, share, span),
                            references,
                            amount,
                            amounts,
                            bounds,
                        )
                        for span, current, references in chosen
                        for k in (factor, 1 / factor)
                    ):
                        break
                    smallest = f"{share:g}"
                cells.append(f"x{factor:g}: {smallest}")
            lines.append(f"  {amount:<14}" + "  ".join(cells))
    return lines


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
