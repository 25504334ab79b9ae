"""The model card of a real small run: built from its artifacts, valid against the Model Card Toolkit's
schema, stored beside the pushed version without touching it, linked from the run summary and the slice
report, and read in a real browser."""

import json
import re
import time
from pathlib import Path

import jsonschema_rs
import keras_tuner
import pytest
from tfx.types import standard_artifacts

from config import folders
from config import pipeline as pipeline_config
from pipeline import local_runner
from registry import model_cards, versions
from reports import evaluation_results, model_card, model_card_html, run_summary, runs
from tests.support import browser
from tests.support.outputs import tree_digest
from tests.support.spans import SMALL_RUN, SMALL_TRAINING, write_sampled_spans

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One real small run of the whole pipeline: (settings, its summary, node id -> output artifacts)."""
    root = tmp_path_factory.mktemp("card")
    write_sampled_spans(root / "data", keep_every=7)
    settings = folders.Settings(output_dir=root / "outputs", data_root=root / "data")
    assert local_runner.run(settings, **SMALL_RUN) == 0
    return settings, json.loads(settings.run_summary_path.read_text()), _outputs_of_latest_run(settings)


def _outputs_of_latest_run(settings: folders.Settings) -> dict:
    store, found = runs.find_run(settings.metadata_path, pipeline_config.PIPELINE_NAME)
    return {
        runs.node_id_of(store, execution.id, pipeline_config.PIPELINE_NAME): run_summary._output_artifacts(
            store, execution.id
        )
        for execution in store.get_executions_by_context(found.id)
    }


def _gather(outputs: dict, settings: folders.Settings, **replaced) -> dict:
    """The card builder on the run's own artifacts, as the ModelCard step calls it."""
    [card] = outputs["ModelCard"]["card"]

    def one(node, key):
        return outputs[node][key][0]

    arguments = dict(
        pushed_model=one("Pusher", "pushed_model"),
        slice_report=one("SliceReport", "report"),
        examples=one("CsvExampleGen", "examples"),
        example_gen_input=str(settings.example_gen_input),
        statistics=one("StatisticsGen", "statistics"),
        schema=one("ImportSchemaGen", "schema"),
        anomalies=one("ExampleValidator", "anomalies"),
        infra_blessing=one("ServingCheck", "blessing"),
        sample=one("EvaluationSample", "sample"),
        training_settings={
            "train_steps": SMALL_TRAINING.train_steps,
            "learning_rate": SMALL_TRAINING.learning_rate,
        },
        code_fingerprints={"run_fn": "f" * 16},
        min_evaluation_examples=pipeline_config.MIN_EVALUATION_EXAMPLES,
    )
    return model_card.gather(**dict(arguments, **replaced))


def test_the_pushed_model_gets_a_valid_card_beside_it_and_its_version_stays_whole(run):
    settings, summary, _ = run
    version = Path(summary["pushed_model"]).name
    folder = model_cards.card_dir(settings.serving_model_dir, version)
    assert summary["model_card"] == str(folder / folders.MODEL_CARD_HTML_FILE)
    card = json.loads((folder / folders.MODEL_CARD_FILE).read_text())
    model_card.validate(card)
    assert card["model_details"]["version"]["name"] == version
    assert card["model_details"]["path"] == summary["pushed_model"]
    # The card is not part of the version: the version is whole, production, and holds only the model.
    assert versions.why_not_whole(settings.serving_model_dir, version) == ""
    assert versions.production_version(settings.serving_model_dir) == version
    assert not any(p.name.startswith("model_card") for p in (settings.serving_model_dir / version).rglob("*"))
    assert versions.not_whole(settings.serving_model_dir) == []


def test_the_builder_reads_the_windows_metrics_and_rates_the_run_produced(run):
    settings, summary, outputs = run
    facts = _gather(outputs, settings)
    data = facts["data"]
    assert data["span"] == outputs["CsvExampleGen"]["examples"][0].get_int_custom_property("span")
    for role in ("training", "evaluation"):
        window = data[role]
        assert window["rows"] > 0 and sum(window["rows_per_half_year"].values()) == window["rows"]
        assert all(re.fullmatch(r"\d{4}H[12]", h) for h in window["half_years"])
    assert data["training"]["half_years"][-1] < data["evaluation"]["half_years"][0]  # held out in time
    assert data["evaluation"]["examples_judged"] == summary["evaluation"]["metrics"]["example_count"]
    assert facts["metrics"]["overall"]["rows"][0]["candidate"] == pytest.approx(
        summary["evaluation"]["metrics"]["auc"]
    )

    # The fairness rates are TFMA's, read here independently of the slice report.
    candidate, _ = evaluation_results.load_rows(summary["evaluation"]["evaluation_uri"])
    rates = {row["slice"]: row for row in facts["fairness"]["slices"]}
    assert set(rates) == set(candidate)
    for name, (_, metrics, _) in candidate.items():
        assert rates[name]["false_positive_rate"] == metrics.get(model_card.FALSE_POSITIVE_RATE)
        assert rates[name]["false_negative_rate"] == metrics.get(model_card.FALSE_NEGATIVE_RATE)
    key = facts["metrics"]["key_slice"]
    assert key["slice"] == evaluation_results.slice_name(pipeline_config.KEY_SLICE) and key["rows"]
    # The small run's key slice is thin, and the card says so.
    assert key["examples"] < pipeline_config.MIN_EVALUATION_EXAMPLES
    assert any(limit.startswith("Thin key slice") for limit in facts["limits"])

    validation = facts["validation"]
    assert validation["evaluator"]["blessed"] and validation["serving_check"]["passed"]
    assert validation["serving_check"]["trips"] == SMALL_RUN["evaluation"].serving_check_rows
    lineage = facts["lineage"]
    assert lineage["pushed_version"] == Path(summary["pushed_model"]).name
    assert re.fullmatch(r"[0-9a-f]{16}", lineage["schema_version"])
    assert facts["tuning"] == {
        "tuned": False,
        "summary": model_card.NOT_TUNED,
        "hyperparameters": {
            "train_steps": SMALL_TRAINING.train_steps,
            "learning_rate": SMALL_TRAINING.learning_rate,
        },
    }


def test_a_tuners_best_hyperparameters_are_shown_instead_of_todays_settings(run, tmp_path):
    settings, _, outputs = run
    best = keras_tuner.HyperParameters()
    best.Choice("learning_rate", [0.001, 0.004], default=0.001)
    best.Int("train_steps", 100, 300, default=250)
    best.Choice("first_layer_units", [32, 256], default=32)
    tuned = standard_artifacts.HyperParameters()
    tuned.uri = str(tmp_path)
    # As TFX's Tuner writes it.
    (tmp_path / model_card.BEST_HYPERPARAMETERS_FILE).write_text(json.dumps(best.get_config()))

    facts = _gather(outputs, settings, hyperparameters=tuned)

    assert facts["tuning"]["tuned"] and facts["tuning"]["hyperparameters"] == {
        "learning_rate": 0.001,
        "train_steps": 250,
        "first_layer_units": 32,
    }
    card = model_card.to_model_card(facts)
    model_card.validate(card)
    architecture = card["model_parameters"]["model_architecture"]
    assert "first_layer_units=32, learning_rate=0.001, train_steps=250" in architecture
    assert "into a 32-64 ReLU network" in architecture  # the tuned width, the model's own second
    # A Tuner output without a readable file is "not tuned", never a failed card.
    (tmp_path / model_card.BEST_HYPERPARAMETERS_FILE).write_text("not json")
    assert _gather(outputs, settings, hyperparameters=tuned)["tuning"]["summary"] == model_card.NOT_TUNED


def test_a_card_that_breaks_the_schema_is_refused_naming_the_field(run):
    settings, _, outputs = run
    valid = model_card.to_model_card(_gather(outputs, settings))
    card = json.loads(json.dumps(valid))
    card["model_details"]["version"]["date"] = "5 December"
    with pytest.raises(jsonschema_rs.ValidationError, match='is not a "date"') as refused:
        model_card.validate(card)
    assert list(refused.value.instance_path) == ["model_details", "version", "date"]
    # The schema's top level admits no other fields.
    with pytest.raises(jsonschema_rs.ValidationError, match="'lineage' was unexpected"):
        model_card.validate(dict(valid, lineage={}))


def test_browser_shows_every_section_and_a_slices_rates(run, tmp_path):
    settings, summary, outputs = run
    page = Path(summary["model_card"])
    markup = page.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)
    assert "<link" not in markup and "<script" not in markup and "@import" not in markup
    dom = browser.Elements(browser.dump_dom(page))
    assert [s[1]["id"] for s in dom.find("section")] == [anchor for anchor, _ in model_card_html.SECTIONS]
    facts = _gather(outputs, settings)
    key = next(row for row in facts["fairness"]["slices"] if row["is_key_slice"])
    [row] = [r for r in dom.find("tr") if r[1].get("data-slice") == key["slice"]]
    assert "key" in row[1]["class"].split()
    cells = [
        text
        for tag, _, texts in dom.elements[dom.elements.index(row) + 1 :][:6]
        if tag == "td"
        for text in texts
    ]
    assert f"{key['false_positive_rate']:.3f}" in cells and f"{key['false_negative_rate']:.3f}" in cells
    [summary_line] = dom.find("p", id="tuning-summary")
    assert summary_line[2] == [model_card.NOT_TUNED]
    png = browser.screenshot(page, tmp_path / "model_card.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_the_published_slice_report_links_the_card(run):
    settings, summary, _ = run
    dom = browser.Elements(browser.dump_dom(settings.slice_report_path))
    [link] = [a for a in dom.find("a") if "model_card" in a[1].get("href", "")]
    assert (settings.slice_report_path.parent / link[1]["href"]).resolve() == Path(
        summary["model_card"]
    ).resolve()


def test_a_run_that_pushes_nothing_keeps_the_stored_card_and_still_writes_its_own(run):
    settings, _, _ = run
    serving_before = tree_digest(settings.serving_model_dir)
    time.sleep(1)  # a new run id
    assert local_runner.run(settings, **SMALL_RUN) == 0
    summary = json.loads(settings.run_summary_path.read_text())
    assert summary["pushed_model"] is None and "same as production" in summary["not_pushed_because"]
    assert tree_digest(settings.serving_model_dir) == serving_before
    outputs = _outputs_of_latest_run(settings)
    [card] = outputs["ModelCard"]["card"]
    assert summary["model_card"] == str(Path(card.uri) / folders.MODEL_CARD_HTML_FILE)
    stored = json.loads((Path(card.uri) / folders.MODEL_CARD_FILE).read_text())
    model_card.validate(stored)
    assert stored["model_details"]["version"]["diff"].startswith("not pushed: same as production")
