"""A workdir's own config as a config file: ``--config=<this file>:<workdir>``
loads ``<workdir>/config.json`` (with today's defaults for fields it lacks).

``vae-train --workdir W`` without ``--config`` uses it, so a workdir is
resumed or re-evaluated by its path alone (``experiments/train.py``).
Loaded by path by ml_collections, so it imports the installed package.
"""

from vae_experiments import rerun


def get_config(workdir: str):
  return rerun.load_run_config(workdir)
