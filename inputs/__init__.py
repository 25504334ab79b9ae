"""The pipeline's inputs, before any component runs: the checks every raw file passes (`checks.py`), how
checked files are laid out for ExampleGen (`layout.py`) and the default data, the Chicago Taxi sample
(`taxi_sample.py`). The pipeline's runners and the monitoring loop (which writes served trips as spans)
both use it; it assembles no pipeline.

May import: config, models, registry.
"""
