"""What the Evaluator measured for a served version, on held-out data: read from TFMA's results through
ML Metadata, for the monitor to set live quality beside it."""

from pathlib import Path

from config import pipeline as pipeline_config
from reports import runs


def evaluated_figures(metadata_path: Path, version: str) -> dict | None:
    """What the Evaluator measured for the model pushed as `version`, on held-out data: overall and on the
    key slice; None when no run recorded pushing it."""
    found = runs.evaluation_of_pushed_version(metadata_path, pipeline_config.PIPELINE_NAME, version)
    if found is None:
        return None
    from reports import evaluation_results  # TFMA: 10-15 s to import, only once a version is served

    rows, _ = evaluation_results.load_rows(found)
    key = evaluation_results.slice_name(pipeline_config.KEY_SLICE)
    figures = {}
    for name, slice_key in (("overall", evaluation_results.OVERALL), ("key_slice", key)):
        _, metrics, matrices = rows.get(slice_key, (None, {}, []))
        figures[name] = {
            "auc": metrics.get("auc"),
            "accuracy": metrics.get("binary_accuracy"),
            "positive_rate": positive_rate(matrices),
            "examples": metrics.get("example_count"),
        }
    return figures


def positive_rate(matrices: list[dict]) -> float | None:
    """Share predicted positive at the decision threshold, from TFMA's confusion matrices."""
    for matrix in matrices:
        if abs(matrix["threshold"] - pipeline_config.REPORTED_DECISION_THRESHOLD) < 1e-6:
            total = sum(
                matrix[k] for k in ("true_positives", "false_positives", "true_negatives", "false_negatives")
            )
            return (matrix["true_positives"] + matrix["false_positives"]) / total if total else None
    return None


class EvaluatedFigures:
    """Each served version's evaluated figures, read once found; a version no run recorded pushing, or
    whose result could not be read, is asked for again at the next refresh."""

    def __init__(self, metadata_path: Path):
        self.metadata_path = metadata_path
        self._found: dict[str, dict | None] = {}

    def of(self, version: str) -> dict | None:
        if self._found.get(version) is None:
            try:
                self._found[version] = evaluated_figures(self.metadata_path, version)
            except Exception as error:  # an unreadable result must not stop the monitor: say so, retry later
                print(f"monitor: the evaluation of version {version} could not be read: {error}", flush=True)
                self._found[version] = None
        return self._found[version]
