"""Monitoring's settings (docs/monitoring.md): live quality, feedback, the request log's retention, the
retraining policy."""

# Live quality is measured over the newest labelled trips per version and
# route; the monitor recomputes every few seconds. Feedback for a trip the request log does not show yet
# waits this long (the log is flushed every second) before it is counted as unknown.
LIVE_QUALITY_WINDOW = 1000
MONITOR_REFRESH_SECONDS = 5.0
FEEDBACK_GRACE_SECONDS = 30.0
FEEDBACK_PATH = "/v1/feedback"
# The most rows one feedback request may carry (the body is bounded as a prediction's, 1 MB): the replay
# sends 500 at a time.
FEEDBACK_MAX_ROWS = 10_000
# A request id is nginx's (32 hex digits) or a server's (a uuid's): a longer one, or one with control
# characters, names no served trip (and would not survive the CSV feedback is stored in).
FEEDBACK_MAX_REQUEST_ID_CHARACTERS = 200
MONITOR_PATH = "/v1/monitor"
# Request-log files older than the retention are moved to `request_log/archive/`, kept, and never read by
# the pipeline again.
REQUEST_LOG_RETENTION_DAYS = 30.0
REQUEST_LOG_ARCHIVE = "archive"
# The retraining policy (monitoring/loop.py): retrain when this many labelled trips are new since the
# last export, or when one of these alerts fires (monitoring/prometheus/monitoring_rules.yml).
RETRAIN_MIN_NEW_LABELLED_TRIPS = 1000
RETRAIN_ON_ALERTS = ("TaxiLiveQualityBelowEvaluated", "TaxiOutputShift", "TaxiInputOutOfDomain")
# A new model pushed by the loop starts as a canary with this share; the canary analysis takes it on.
LOOP_CANARY_PERCENT = 10.0
