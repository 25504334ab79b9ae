"""The monitor page and its terminal summary, rendered from collected data: what is wrong now comes
first, every table has its empty state, and served text is escaped."""

from monitoring import page_html
from tests.support import browser


def _measured(trips=300, accuracy=0.8, auc=0.85):
    return {"trips": trips, "auc": auc, "accuracy": accuracy, "calibration": 1.0, "positive_rate": 0.4}


def _estimate(version):
    check = {
        "trips": 150,
        "estimated": {"trips": 150, "accuracy": 0.82, "auc": 0.8},
        "realised": _measured(150),
    }
    return {"version": version, "unlabelled": {"trips": 20, "accuracy": 0.8, "auc": 0.8}, "check": check}


def _data(**more) -> dict:
    data = {
        "written": "2026-11-30T08:00:00+00:00", "output_dir": "/out", "minutes": 30, "start": 0.0, "end": 1800.0,
        "stack": {"running": False}, "prometheus": None, "series": [], "alerts": [],
        "figures": {"logged_trips": 0, "labelled_trips": 0, "feedback": {"unknown": 0, "duplicates": 0, "waiting": 0},
                    "window": {"start": 0.0, "end": 3600.0, "seconds": 3600.0, "max_trips": 10000, "live_versions": None},
                    "live": [], "estimated": [], "evaluated": {}, "shadow_agreement": []},
        "drift": {"rows": [], "served_trips": 3, "why_empty": "fewer than 100 trips"},
    }  # fmt: skip
    data.update(more)
    return data


def _texts(markup: str) -> str:
    return " ".join(" ".join(element[2]) for element in browser.Elements(markup).elements)


def test_a_stopped_stack_with_no_traffic_shows_each_empty_state():
    markup = page_html.render(_data())
    dom = browser.Elements(markup)
    assert dom.find("span", id="verdict")[0][2] == ["no alert firing"]
    assert not dom.find("table")
    text = _texts(markup)
    for expected in ("serving: stopped", "no alerts to show", "no time series", "No labelled trips yet",
                     "No served trips yet", "No shadow has run", "No drift table: fewer than 100 trips",
                     "Every version (no stack runs), over the trips answered from 1970-01-01 00:00:00 to 1970-01-01 01:00:00 UTC"):  # fmt: skip
        assert expected in text, expected
    assert page_html.summary_lines(_data()) == ["Monitor of /out: 0 trips logged, 0 labelled"]


def test_a_firing_alert_leads_and_every_table_is_filled():
    figures = {
        "logged_trips": 900, "labelled_trips": 600, "feedback": {"unknown": 1, "duplicates": 2, "waiting": 3},
        "window": {"start": 0.0, "end": 3600.0, "seconds": 3600.0, "max_trips": 10000, "live_versions": ["7", "9"]},
        "live": [{"version": "7", "route": "stable", "overall": _measured(), "key_slice": _measured(100)},
                 {"version": "9", "route": "shadow", "overall": _measured(), "key_slice": _measured(100)}],
        "estimated": [_estimate("7")],
        "evaluated": {"7": {"overall": _measured(5000, 0.9, 0.92), "key_slice": _measured(2000)}, "9": None},
        "shadow_agreement": [{"stable": "7", "shadow": "9", "trips": 300, "decisions_agree": 0.95, "mean_abs_difference": 0.03}],
    }  # fmt: skip
    alert = {"name": "TaxiLiveQualityBelowEvaluated", "state": "firing", "since": "t", "labels": {"version": "7"},
             "severity": "page", "summary": "live accuracy 0.8 < 0.9", "meaning": "the <b>concept</b> moved"}  # fmt: skip
    drift_rows = [{"feature": "<fare>", "measure": "jensen_shannon_divergence", "value": 0.3, "threshold": 0.2, "above": True},
                  {"feature": "company", "measure": "infinity_norm", "value": 0.1, "threshold": None, "above": False}]  # fmt: skip
    series = [{"title": title, "y_label": "share", "y_range": (0, 1), "lines": [{"name": "7 stable", "points": [(0.0, 0.5), (60.0, None)]}]}
              for title in ("Live accuracy", "Live AUC")]  # fmt: skip
    data = _data(
        stack={"running": True, "mode": "canary", "stable": {"version": "7"}, "candidate": {"version": "8"}, "canary_percent": 10.0},
        prometheus="http://127.0.0.1:1", series=series, alerts=[alert], figures=figures,
        drift={"rows": drift_rows, "served_trips": 900, "training": "span-20161", "since_version": "7"},
    )  # fmt: skip
    markup = page_html.render(data)
    dom = browser.Elements(markup)
    assert dom.find("span", id="verdict")[0][2] == ["1 alert(s) firing"]
    for table in ("alerts", "quality", "estimates", "shadow", "drift"):
        assert dom.find("table", id=table), table
    assert len(dom.find("svg", **{"class": "time-series"})) == len(series)
    assert "canary: stable 7, candidate 8 (10 %)" in _texts(markup)
    assert "The versions live now (7, 9), over the trips answered from" in _texts(markup)
    assert "<fare>" not in markup and "&lt;fare&gt;" in markup and "&lt;b&gt;concept" in markup
    assert page_html.summary_lines(data) == [
        "Monitor of /out: 900 trips logged, 600 labelled",
        "  version 7 (stable): accuracy 0.800 (evaluated 0.900), AUC 0.850 (evaluated 0.920) on 300 labelled trips",
        "  ALERT firing: TaxiLiveQualityBelowEvaluated: live accuracy 0.8 < 0.9",
        "  served inputs drifted past the skew thresholds: <fare>",
    ]
