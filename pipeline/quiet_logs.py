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
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("tensorflow", "apache_beam", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)
