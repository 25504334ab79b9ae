"""Helpers the tests share, in one place: small real data as spans (`spans.py`), output folders and the
CLI as a user runs it (`outputs.py`), real SavedModels (`serving_models.py`), request logs as servers write them (`request_logs.py`), pages in Chromium
(`browser.py`), corruptions of real data (`corrupted_data.py`), a TFMA evaluation without a model
(`model_free_evaluation.py`), the stand-in for KFP's launcher (`container_launcher.py`) and the programs
from Debian packages some tests run (`system_tools.py`). Fixtures that
wrap them are in the conftest.py files."""
