"""`make lock`'s new lock: the old one's comments, then every pin but the installers'."""

from tools import lock


def test_the_new_lock_keeps_the_comments_and_drops_pip_and_uv():
    old = "# Fully pinned.\n#   tfx[kfp]==1.16.0\nabsl-py==1.4.0\n"
    frozen = "absl-py==2.0.0\npip==24.0\ntfx==1.16.0\nuv==0.13.9\n"
    assert (
        lock.lock_text(old, frozen) == "# Fully pinned.\n#   tfx[kfp]==1.16.0\nabsl-py==2.0.0\ntfx==1.16.0\n"
    )


def test_the_lock_names_what_its_comment_says_it_resolves():
    header = next(line for line in lock.LOCK.read_text().splitlines() if "tfx[kfp]" in line)
    assert header.split() == ["#", *lock.REQUIREMENTS]
