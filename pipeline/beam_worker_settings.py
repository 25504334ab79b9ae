"""Imported by each of Beam's worker processes as it starts (`--beam_plugins`, in PARALLEL_BEAM_ARGS):
the settings of beam_settings.py that apply to a worker."""

from pipeline import beam_settings

beam_settings.use_fast_crc32c()
