"""Custom TFX components of this project, each in its own module (importable by the Kubeflow image):
ProductionModel, EvaluationSample, the Evaluator that judges a first model once, the extended
ExampleValidator, the two data gates, SliceReport, ModelCard and the Tuner that records its trials.

May import: config, models, registry, reports.
"""

import models  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# Re-exported so the artifact type name "components.HtmlReport" is an importable class path, which is
# how TFX's Kubeflow executor runner finds custom artifact types.
from components.slice_report import HtmlReport  # noqa: E402

__all__ = ["HtmlReport"]
