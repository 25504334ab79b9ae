"""Log levels for a run a person can follow: errors only, unless asked for everything."""

import logging
import os
import warnings


def quiet_logs(verbose: bool) -> None:
    """TensorFlow, absl, Beam and Google's client libraries are chatty; keep errors only unless asked.

    Must run before TensorFlow is imported: its C++ log level is read once, at import.
    """
    if verbose:
        return
    # 3 also hides the C++ start-up lines about CUDA plugins on a machine without GPUs.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # TFMA divides by zero on slices with no positives (or no negatives) and reports the result as n/a.
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="tensorflow_model_analysis")
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("tensorflow", "apache_beam", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # A failed component is reported once, by the run's own output (and its traceback, unless it is a
    # data validation stop); Beam's and TFX's copies of the same failure are noise.
    logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
    logging.getLogger("absl").addFilter(lambda record: record.msg != "Execution %d failed.")
