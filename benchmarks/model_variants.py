"""Served-model versions that misbehave on purpose, built from a real one: `broken` fails on real requests,
`slow` answers right but late. `make bench-serve` measures a slow shadow's cost with them, and the serving
tests use them as a bad push would look."""

from pathlib import Path

import tensorflow as tf

from models import features
from models.signatures import EXAMPLES_SIGNATURE, RAW_FEATURES_SIGNATURE


class _Wrapped(tf.Module):
    """A served model's signatures around a loaded model, with `before(inputs)` done before each call."""

    def __init__(self, source: Path, before):
        super().__init__()
        self.inner = tf.saved_model.load(str(source))
        raw = self.inner.signatures[RAW_FEATURES_SIGNATURE]
        examples = self.inner.signatures[EXAMPLES_SIGNATURE]
        raw_spec = raw.structured_input_signature[1]

        @tf.function(
            input_signature=[{k: tf.TensorSpec(v.shape, v.dtype, name=k) for k, v in raw_spec.items()}]
        )
        def raw_features(values):
            with tf.control_dependencies([before(values)]):
                return raw(**values)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serving_default(serialized):
            with tf.control_dependencies([before({"examples": serialized})]):
                return examples(examples=serialized)

        self.raw_features, self.serving_default = raw_features, serving_default


def _save(module: _Wrapped, folder: Path) -> Path:
    tf.saved_model.save(
        module,
        str(folder),
        signatures={
            RAW_FEATURES_SIGNATURE: module.raw_features,
            EXAMPLES_SIGNATURE: module.serving_default,
        },
    )
    return folder


def broken(source: Path, folder: Path) -> Path:
    """A version that loads and passes the server's warm-up call (fare $1), then fails on every real
    fare, as a model exported wrong can."""

    def fail(inputs):  # decided at run time, on the request: a constant would fail the export itself
        if "examples" in inputs:
            return tf.debugging.assert_less(tf.size(inputs["examples"]), 0, message="a broken model version")
        return tf.debugging.assert_less_equal(
            tf.reduce_max(inputs[features.FARE]), 1.0, message="a broken model version"
        )

    return _save(_Wrapped(source, fail), folder)


def slow(source: Path, folder: Path, seconds: float) -> Path:
    """A version that answers right, `seconds` late: tf.data's sleep, an op of the graph, so the delay is
    the same on a busy machine or an idle one (a loop of computation would not be)."""
    from tensorflow.python.data.experimental.ops import testing

    microseconds = int(seconds * 1_000_000)

    def wait(inputs):
        size = tf.size(next(iter(inputs.values())))
        slept = next(iter(tf.data.Dataset.range(1).apply(testing.sleep(microseconds))))
        return slept + 0 * tf.cast(size, tf.int64)

    return _save(_Wrapped(source, wait), folder)
