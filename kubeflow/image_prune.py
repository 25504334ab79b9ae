"""`make image-prune`: removes the pipeline's images other than the current tag (each code change tags a new
3.7 GB one), with the stopped containers of those images, which would pin them.

    .venv/bin/python -m kubeflow.image_prune

An image a running container uses is kept, with docker's reason.
"""

import subprocess
import sys


def _docker(*arguments: str) -> list[str]:
    """The lines docker prints for a query (`images`, `ps`)."""
    listed = subprocess.run(["docker", *arguments], capture_output=True, text=True, check=True)
    return listed.stdout.split()


def prune(current: str) -> list[str]:
    """Removes every tag of `current`'s repository but `current`; returns the tags removed."""
    repository = current.rsplit(":", 1)[0]
    removed = []
    for old in _docker("images", "--format", "{{.Repository}}:{{.Tag}}", repository):
        if old == current:
            continue
        stopped = _docker(
            "ps", "--all", "--quiet", "--filter", f"ancestor={old}", "--filter", "status=exited",
            "--filter", "status=created",
        )  # fmt: skip
        if stopped:
            subprocess.run(["docker", "rm", *stopped], stdout=subprocess.DEVNULL)
        if subprocess.run(["docker", "rmi", old], stdout=subprocess.DEVNULL).returncode == 0:
            print(f"image-prune: removed {old}")
            removed.append(old)
        else:
            print(f"image-prune: kept {old} (why: above)")
    return removed


def main() -> int:
    from kubeflow import compiler  # TFX: seconds to import, for the current image's tag

    try:
        prune(compiler.image())
    except subprocess.CalledProcessError as error:
        print(
            f"error: `{' '.join(error.cmd)}` failed: {error.stderr.strip()} (is dockerd running?)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
