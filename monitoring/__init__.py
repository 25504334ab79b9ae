"""Monitoring the served model and closing the loop back into training (to come: issue 17).

Monitoring reads the serving stack's metrics and request logs and the pipeline's artifacts, and
starts the pipeline only as a command, never by importing the code that assembles it.

May import: models, registry, reports, serving, pipeline.configs.
"""
