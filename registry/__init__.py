"""The registry of pushed models: the Pusher's serving directory, read and written in one place
(versions.py): which versions are complete, which one is production, and which were rolled back.

The pipeline's ProductionModel and Pusher, the model server and the CLI all go through it.

May import: config.
"""
