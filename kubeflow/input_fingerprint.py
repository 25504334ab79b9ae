"""The compiled pipeline's first step on Kubeflow, never cached: each ExampleGen's fingerprint of the
files it would read now, which that ExampleGen then takes as a parameter, its data key.

KFP keys a cached step on its parameters and input artifacts, never on files, and ExampleGen's parameters
are constants: without a key from the data, every run after the first would reuse the first run's
examples. The fingerprint is TFX's own (`calculate_splits_fingerprint_span_and_version`, what ExampleGen's
driver computes): the span `{SPAN}` resolves to now, and every matching file's name, size and modification
time. Computed when the run starts, whoever starts it, with no pipeline parameter to leave empty
(kubeflow/compiler.py wires it; kubeflow/README.md, "New data is a new cache key").

    python -m kubeflow.input_fingerprint --json_serialized_invocation_args '<KFP ExecutorInput JSON>'

For each ExampleGen task T the step takes `T_input_base`, `T_input_config` (and `T_range_config` if T has
one) and writes `T_fingerprint`: "span S, <16 hex digits>".
"""

import hashlib
import json
import sys
from pathlib import Path

INVOCATION_FLAG = "--json_serialized_invocation_args"
STEP = "InputFingerprint"
INPUT_BASE, INPUT_CONFIG, RANGE_CONFIG = "input_base", "input_config", "range_config"
OUTPUT_SUFFIX = "_fingerprint"


def input_parameter(task: str, parameter: str) -> str:
    return f"{task}_{parameter}"


def output_parameter(task: str) -> str:
    return f"{task}{OUTPUT_SUFFIX}"


def data_key(input_base: str, input_config: str, range_config: str | None = None) -> str:
    """What an ExampleGen with these parameters would read now, as a short key naming its span."""
    from tfx.components.example_gen import utils
    from tfx.proto import example_gen_pb2, range_config_pb2
    from tfx.utils import proto_utils

    splits = proto_utils.json_to_proto(input_config, example_gen_pb2.Input()).splits
    ranges = proto_utils.json_to_proto(range_config, range_config_pb2.RangeConfig()) if range_config else None
    fingerprint, span, _ = utils.calculate_splits_fingerprint_span_and_version(input_base, splits, ranges)
    return f"span {span}, {hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}"


def fingerprints(parameters: dict[str, str]) -> dict[str, str]:
    """Output parameter -> data key, for every ExampleGen task whose input base is among `parameters`."""
    tasks = [name.removesuffix(f"_{INPUT_BASE}") for name in parameters if name.endswith(f"_{INPUT_BASE}")]
    return {
        output_parameter(task): data_key(
            parameters[input_parameter(task, INPUT_BASE)],
            parameters[input_parameter(task, INPUT_CONFIG)],
            parameters.get(input_parameter(task, RANGE_CONFIG)),
        )
        for task in sorted(tasks)
    }


def main(argv: list[str]) -> int:
    invocation = json.loads(argv[argv.index(INVOCATION_FLAG) + 1])
    keys = fingerprints(invocation["inputs"]["parameterValues"])
    for name, key in keys.items():
        print(f"{name}: {key}", flush=True)
    outputs = invocation["outputs"]
    # KFP's launcher reads output parameters from the executor output file, kfp.local from either: both.
    for name, slot in (outputs.get("parameters") or {}).items():
        Path(slot["outputFile"]).parent.mkdir(parents=True, exist_ok=True)
        Path(slot["outputFile"]).write_text(keys[name])
    Path(outputs["outputFile"]).parent.mkdir(parents=True, exist_ok=True)
    Path(outputs["outputFile"]).write_text(json.dumps({"parameterValues": keys}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
