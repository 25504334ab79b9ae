"""The pipeline image is built from the same lock, tools and packages as the local environment."""

import re

from config import folders
from kubeflow import compiler

ROOT = folders.REPO_ROOT
DOCKERFILE = (ROOT / "kubeflow" / "Dockerfile").read_text()


def _makefile_variable(name: str) -> str:
    return re.search(rf"^{name} := (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)


def test_dependencies_come_only_from_the_lock_file():
    assert "COPY requirements.lock ./" in DOCKERFILE
    installs = [args.strip() for args in re.findall(r"uv pip install ([^\\\n]+)", DOCKERFILE)]
    assert installs == [
        "--system --no-cache --compile-bytecode -r requirements.lock",
        "--system --no-cache --compile-bytecode --no-deps .",
    ]
    # The only other package installed is uv itself, at the version the Makefile uses.
    assert re.findall(r"pip install [^\n]*?(\S+==\S+)", DOCKERFILE) == ["uv==${UV_VERSION}"]
    assert f"ARG UV_VERSION={_makefile_variable('UV_VERSION')}" in DOCKERFILE


def test_the_lock_pins_every_package():
    lines = [
        line
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-\[\],]+==[^=\s]+", line) for line in lines), [
        line for line in lines if "==" not in line
    ]


def test_base_python_is_the_one_tfx_1_16_needs():
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE, re.M).group(1)
    assert base.startswith("python:3.10.") and not base.endswith(":latest")
    assert "python3.10" in _makefile_variable("OFFLINE_BASE")
    assert 'python_requires="==3.10.*"' in (ROOT / "setup.py").read_text()


def test_legacy_keras_and_installed_packages():
    assert "TF_USE_LEGACY_KERAS=1" in DOCKERFILE
    # Installed, then the sources removed: steps import the packages by module path.
    removed = re.search(r"rm -rf build \./\*\.egg-info setup\.py ([\w ]+)", DOCKERFILE).group(1).split()
    packages = [
        source
        for source in re.findall(r"^COPY (\S+) ", DOCKERFILE, re.M)
        if (ROOT / source / "__init__.py").is_file()
    ]
    assert sorted(removed) == sorted(packages)
    assert compiler.ENTRYPOINT == ["python", "-m", "kubeflow.entrypoint"]


def test_everything_the_image_copies_is_in_its_tag_and_passes_dockerignore():
    copied = re.findall(r"^COPY (\S+) ", DOCKERFILE, re.M)
    assert set(copied) <= set(compiler.IMAGE_SOURCES)
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert set(copied) <= allowed


def test_image_tag_changes_with_the_code(tmp_path):
    for source in compiler.IMAGE_SOURCES:
        target = tmp_path / source
        if (ROOT / source).is_dir():
            target.mkdir(parents=True, exist_ok=True)
            (target / "module.py").write_text("x = 1\n")
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("content\n")
    before = compiler.image_tag(tmp_path)
    (tmp_path / "models" / "module.py").write_text("x = 2\n")
    assert compiler.image_tag(tmp_path) != before
    (tmp_path / "models" / "module_test.py").write_text("tests do not go into the image\n")
    assert compiler.image_tag(tmp_path) == compiler.image_tag(tmp_path)
