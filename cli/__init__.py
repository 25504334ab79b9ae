"""`taxi-pipeline`, the operator's command line: prepare data, run, summary, report, drift.

The top layer: it only parses arguments and calls the packages below.

May import: config, models, registry, inputs, components, pipeline, kubeflow, reports, serving, clients, monitoring.
"""
