"""The registry of pushed models: the Pusher's serving directory, read and written in one place: which
versions are whole (completion.py: each version's completion record), which one is production, which
were rolled back, what is quarantined, and the one lock every change takes (versions.py); each pushed
version's model card, kept beside it (model_cards.py).

The pipeline's ProductionModel and Pusher, the model server and the CLI all go through it.

May import: config.
"""
