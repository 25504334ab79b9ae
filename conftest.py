"""Fixtures shared by the tests beside the code (models/, pipeline/, components/) and under tests/."""

import pytest


@pytest.fixture(scope="session")
def model_free_evaluation(tmp_path_factory):
    """A real TFMA evaluation folder made with the pipeline's EvalConfig (see tests/support/model_free_evaluation.py)."""
    from tests.support import model_free_evaluation

    return model_free_evaluation.evaluate(tmp_path_factory.mktemp("model_free"))
