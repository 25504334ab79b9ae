"""Developer tools the Makefile and CI run: `system_packages.py` (the Debian packages the tests need:
installed by `make setup`, checked by `make test`) and `lock.py` (`make lock`). Standard library only, so
they run before `.venv` exists.

May import: nothing of this project.
"""
