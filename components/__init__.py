"""Custom TFX components of this project (each in its own module, importable by container images)."""
