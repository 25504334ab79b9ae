"""Monitoring's settings (docs/monitoring.md, "Settings and why"): live quality, feedback, the monitor's
store, the request log's retention, the retraining policy."""

# Live quality covers the versions live now (the stack's stable, and its canary or shadow), over the trips
# answered in the last hour: labels arrive minutes after their answers, so an hour's newest labelled trips
# are a fair sample of it, and 300 trips an hour (one every 12 s) already let the quality alert judge;
# a version's quality of an hour ago no longer speaks for it. Within the hour, the newest 10,000 labelled
# trips per version and route: accuracy's standard error there is at most 0.005, a twentieth of the
# alert's margin, so more trips change no decision, only the time each refresh takes.
LIVE_QUALITY_WINDOW_SECONDS = 3600.0
LIVE_QUALITY_MAX_TRIPS = 10_000
# The monitor recomputes every few seconds. Feedback for a trip the request log does not show yet waits
# this long (the log is flushed every second) before it is counted as unknown.
MONITOR_REFRESH_SECONDS = 5.0
FEEDBACK_GRACE_SECONDS = 30.0
FEEDBACK_PATH = "/v1/feedback"
MONITOR_PATH = "/v1/monitor"
# The request log and the feedback, joined incrementally (monitoring/store.py), in the feedback folder.
MONITOR_STORE_FILE = "monitor.sqlite"
# Request-log files older than the retention are moved to `request_log/archive/`, kept, and never read by
# the pipeline (or the monitor) again.
REQUEST_LOG_RETENTION_DAYS = 30.0
REQUEST_LOG_ARCHIVE = "archive"
# The retraining policy (monitoring/loop.py): retrain when this many labelled trips are new (no earlier
# retrain used them), or when one of these alerts fires (monitoring/prometheus/monitoring_rules.yml) and
# at least as many new trips as the quality alert judges from (300) are there to learn from: an alert
# alone, on trips earlier retrains used, would retrain on the same data again and again.
RETRAIN_MIN_NEW_LABELLED_TRIPS = 1000
RETRAIN_ON_ALERTS = ("TaxiLiveQualityBelowEvaluated", "TaxiOutputShift", "TaxiInputOutOfDomain")
RETRAIN_ON_ALERT_MIN_NEW_LABELLED_TRIPS = 300
# Between two retrains, at least an hour: the time for a retrained model to be trained (4 min on the
# sample, 8 at 1M rows), ramped by the canary analysis, and judged by the quality alert on its own
# labelled trips, before the loop acts again.
RETRAIN_COOLDOWN_SECONDS = 3600.0
# A new model pushed by the loop starts as a canary with this share; the canary analysis takes it on.
LOOP_CANARY_PERCENT = 10.0
