"""A change of units upstream (fares in another currency, miles as kilometres, seconds as minutes): the
one drift that statistics of a single column cannot tell from the world changing.

A constant factor k on a column moves its whole distribution by k, which Jensen-Shannon divergence sees
only when k is large: between half-years of the sample, the amounts' own distributions move by as much as
a factor of 1.5 would (trip_miles' quartiles by 0.65-0.81 from 2013 H1 to H2). But a change of units moves
the column against the columns it is measured with, and a trip's fare, miles and seconds move together:
the median fare per mile, fare per second and miles per second change by at most 1.2x between real
half-years, where a factor k on one of them changes two of these medians by k.

So for each amount, its scale change is the geometric mean of how much the medians of its ratios to the
other amounts changed (rows where both are positive), against the previous span (drift) or the training
data (skew). On the sample's spans it stays within 1/1.17-1.17; every factor from 1.5 to 3 (and 100)
on any one amount, in any transition, gives at least 1.28 (schema/README.md, "Changes of units").

    .venv/bin/python -m components.unit_changes outputs/data/checked/spans    # the table for your spans
"""

import csv
import itertools
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

# Rows read per split at most: a median from 50,000 ratios is as good as from all of them.
MAX_ROWS = 50_000


def relation_medians(
    columns: Mapping[str, np.ndarray], amounts: Sequence[str]
) -> dict[tuple[str, str], float]:
    """(a, b) -> median of a / b over the rows where both are positive, for every pair of `amounts`.

    `columns`: amount -> values, one per row (NaN where missing). A pair with no such row is left out.
    """
    medians = {}
    for a, b in itertools.combinations(amounts, 2):
        x, y = columns[a], columns[b]
        usable = (x > 0) & (y > 0)
        if usable.any():
            medians[(a, b)] = float(np.median(x[usable] / y[usable]))
    return medians


def scale_changes(
    current: Mapping[tuple[str, str], float],
    reference: Mapping[tuple[str, str], float],
    amounts: Sequence[str],
) -> dict[str, float]:
    """Amount -> the factor its scale seems to have changed by from `reference` to `current` (1 = none).

    The geometric mean, over the amount's pairs, of how much the median ratio changed, oriented so that
    the amount is the numerator: a factor k on one amount alone gives k for it.
    """
    changes = {}
    for amount in amounts:
        logs = [
            math.log(current[pair] / reference[pair]) * (1 if pair[0] == amount else -1)
            for pair in current
            if amount in pair and pair in reference and reference[pair] > 0 and current[pair] > 0
        ]
        if logs:
            changes[amount] = math.exp(sum(logs) / len(logs))
    return changes


def size_of_change(factor: float) -> float:
    """How far a factor is from no change, either way: 2 and 0.5 are both 2."""
    return max(factor, 1 / factor)


def columns_of_examples(file_paths: Sequence[str], amounts: Sequence[str]) -> dict:
    """Amount -> values (NaN where missing) of the first MAX_ROWS tf.Examples in gzipped TFRecord files.

    Each amount is parsed as the type the examples store it in, not the schema's: CsvExampleGen infers a
    column's type per span, so fares that are all whole dollars arrive as integers, and a column with text
    in it as bytes. A text column has no scale to compare (NaN here); the schema's type check reports it.
    """
    import tensorflow as tf

    records = tf.data.TFRecordDataset(list(file_paths), compression_type="GZIP").take(MAX_ROWS)
    kinds = _stored_kinds(records, amounts)
    dtypes = {"float_list": tf.float32, "int64_list": tf.int64}
    spec = {name: tf.io.VarLenFeature(dtypes[kinds[name]]) for name in amounts if kinds.get(name) in dtypes}
    values = {name: [] for name in amounts}
    for batch in records.batch(4096):
        parsed = tf.io.parse_example(batch, spec) if spec else {}
        for name in amounts:
            if name not in spec:
                values[name].append(np.full(len(batch), np.nan))
                continue
            dense = tf.sparse.to_dense(tf.sparse.reset_shape(parsed[name], [len(batch), 1]), default_value=-1)
            column = tf.cast(dense[:, 0], tf.float64).numpy()
            column[column < 0] = np.nan
            values[name].append(column)
    return {name: np.concatenate(parts) if parts else np.array([]) for name, parts in values.items()}


def _stored_kinds(records, amounts: Sequence[str]) -> dict[str, str]:
    """Amount -> the value list its examples use ("float_list", "int64_list" or "bytes_list"), from the
    first example that has a value for it."""
    import tensorflow as tf

    kinds: dict[str, str] = {}
    for serialized in records:
        example = tf.train.Example.FromString(serialized.numpy())
        for name in amounts:
            feature = example.features.feature.get(name)
            if name not in kinds and feature is not None and feature.WhichOneof("kind"):
                kind = feature.WhichOneof("kind")
                if len(getattr(feature, kind).value):
                    kinds[name] = kind
        if len(kinds) == len(amounts):
            break
    return kinds


def columns_of_csv(files: Sequence[Path], amounts: Sequence[str]) -> dict[str, np.ndarray]:
    """Amount -> values (NaN where empty) of every row of CSV files with a header."""
    values = {name: [] for name in amounts}
    for path in files:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                for name in amounts:
                    values[name].append(float(row[name]) if row[name].strip() else math.nan)
    return {name: np.array(column, dtype=np.float64) for name, column in values.items()}


def main(argv: list[str]) -> int:
    """Prints every consecutive pair of spans' scale changes for the amounts, from `span-N/*.csv` folders."""
    from config import pipeline as pipeline_config

    if len(argv) != 1:
        print(
            f"usage: python -m components.unit_changes <folder of {pipeline_config.SPAN_FOLDER_PREFIX}N/ folders>"
        )
        return 2
    span_folders = sorted(
        Path(argv[0]).glob(f"{pipeline_config.SPAN_FOLDER_PREFIX}*"), key=lambda f: int(f.name.split("-")[1])
    )
    amounts = pipeline_config.UNIT_CHANGE_AMOUNTS
    medians = [
        relation_medians(columns_of_csv(sorted(f.glob("*.csv")), amounts), amounts) for f in span_folders
    ]
    print(f"{'spans':<24}" + "".join(f"{a:>14}" for a in amounts))
    for (previous, old), (current, new) in itertools.pairwise(zip(span_folders, medians, strict=True)):
        changes = scale_changes(new, old, amounts)
        print(
            f"{previous.name + ' > ' + current.name:<24}" + "".join(f"{changes[a]:>13.3f}x" for a in amounts)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
