"""AUC of a pushed model's `serving_default` on the held-out window of a data root, with our label.

    python -m benchmarks.score MODEL_DIR DATA_ROOT

The window is the `EVALUATION_SPANS` newest spans (what our Evaluator scores), the label tips > 20 % of
the fare. Any model serving raw tf.Examples without tips can be scored, so every variant's AUC is
measured on the same rows the same way. Prints {"auc": ..., "examples": ...} as JSON.
"""

import csv
import json
import sys
from pathlib import Path

from pipeline.quiet_logs import quiet_logs

quiet_logs(verbose=False)

import tensorflow as tf  # noqa: E402

from clients import raw_examples  # noqa: E402
from config import pipeline as pipeline_config  # noqa: E402
from inputs import checks, layout  # noqa: E402
from models import features  # noqa: E402
from models.signatures import EXAMPLES_SIGNATURE  # noqa: E402

BATCH = 1024


def main() -> int:
    model_dir, data_root = sys.argv[1], Path(sys.argv[2])
    spans = checks.discover_spans(data_root)
    ordered = sorted(spans)
    _, window = layout.windows(
        ordered, len(ordered) - 1, pipeline_config.TRAINING_WINDOW_SPANS, pipeline_config.EVALUATION_SPANS
    )
    types = raw_examples.column_types()
    examples, labels = [], []
    for span in window:
        for csv_file in spans[span]:
            with csv_file.open(newline="") as handle:
                reader = csv.reader(handle)
                header = next(reader)
                for row in reader:
                    fare, tips = (float(row[header.index(c)] or 0) for c in (features.FARE, features.TIPS))
                    labels.append(float(features.is_big_tipper(tips, fare)))
                    examples.append(raw_examples.serialized_example(header, row, types))
    serve = tf.saved_model.load(model_dir).signatures[EXAMPLES_SIGNATURE]
    [input_name] = serve.structured_input_signature[1]
    auc = tf.keras.metrics.AUC(num_thresholds=1000)
    for start in range(0, len(examples), BATCH):
        [scores] = serve(**{input_name: tf.constant(examples[start : start + BATCH])}).values()
        auc.update_state(labels[start : start + BATCH], tf.reshape(scores, [-1]))
    print(json.dumps({"auc": round(float(auc.result()), 4), "examples": len(examples)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
