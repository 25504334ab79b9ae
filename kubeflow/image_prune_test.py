"""`make image-prune` against a stand-in for the docker CLI on PATH (the real one needs a daemon): which
images it removes, which containers go with them, and what it keeps."""

import json

from kubeflow import image_prune

CURRENT = "taxi-pipeline:new"
# What the stand-in answers: the repository's images, a stopped container of one old image, and an old
# image a running container uses, which docker refuses to remove.
DOCKER = """#!/usr/bin/env python3
import json, sys
with open(sys.argv[0] + ".calls", "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
command = sys.argv[1]
if command == "images":
    print("taxi-pipeline:old\\ntaxi-pipeline:new\\ntaxi-pipeline:busy")
elif command == "ps":
    print("c0ffee" if "ancestor=taxi-pipeline:old" in sys.argv else "")
elif command == "rmi" and sys.argv[2] == "taxi-pipeline:busy":
    sys.exit("Error response from daemon: conflict: image is being used by running container 5eed")
"""


def test_old_images_go_with_their_stopped_containers_and_a_running_ones_image_stays(
    tmp_path, monkeypatch, capsys
):
    docker = tmp_path / "docker"
    docker.write_text(DOCKER)
    docker.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")

    assert image_prune.prune(CURRENT) == ["taxi-pipeline:old"]

    calls = [json.loads(line) for line in docker.with_name("docker.calls").read_text().splitlines()]
    assert ["images", "--format", "{{.Repository}}:{{.Tag}}", "taxi-pipeline"] in calls
    assert ["rm", "c0ffee"] in calls
    assert ["rmi", "taxi-pipeline:old"] in calls and ["rmi", "taxi-pipeline:busy"] in calls
    assert not any(CURRENT in call for call in calls if call[0] in ("rm", "rmi"))
    out = capsys.readouterr().out
    assert "image-prune: removed taxi-pipeline:old" in out
    assert "image-prune: kept taxi-pipeline:busy (why: above)" in out
