"""Monitoring the served model and closing the loop back into training: labels that arrive later, live
and estimated quality, alerting rules, the monitor page, the retraining loop and the replay.

Monitoring reads the serving stack's metrics and request logs and the pipeline's artifacts, and starts
the pipeline only as a command, never by importing the code that assembles it (the sample's spans, for
the replay, come from `inputs`, which assembles nothing).

May import: config, models, registry, inputs, reports, serving, clients.
"""
