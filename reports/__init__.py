"""What a person reads about runs, read back from ML Metadata and the artifacts: the run summary, the runs
lookup, TFMA's and ExampleValidator's results as rows, the slice table, the drift table and the
self-contained HTML pages (html.py holds what the pages share).

Components and the CLI import it; it never imports them, nor the code that assembles the pipeline.

May import: config, models, registry.
"""

import models  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
