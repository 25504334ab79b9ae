"""Developer tools the Makefile runs: `lock.py` (`make lock`). Standard library only, so they run before
`.venv` exists.

May import: nothing of this project.
"""
