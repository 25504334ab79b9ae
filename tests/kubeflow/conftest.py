"""The pipeline image, for the tests that run the compiled pipeline in its containers; skipped with the
reason where Docker or the image is missing."""

import shutil
import subprocess

import pytest

from kubeflow import compiler


@pytest.fixture(scope="module")
def image():
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed (apt-get install docker.io)")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.skip("dockerd is not running (start it: dockerd &)")
    tag = compiler.image()
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0:
        pytest.skip(f"image {tag} is not built: run `make image-offline` (or `make image`)")
    return tag
