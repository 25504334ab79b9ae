"""Custom TFX components of this project (each in its own module, importable by container images)."""

# Re-exported so the artifact type name "components.HtmlReport" is an importable class path, which is
# how TFX's Kubeflow executor runner finds custom artifact types.
from components.slice_report import HtmlReport

__all__ = ["HtmlReport"]
