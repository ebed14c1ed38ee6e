"""Rerun safety: a workdir is continued only with the config it was trained
with, on the same data; old ``config.json`` files are read with today's
defaults (``with_defaults``; a flat ``hparams`` is upgraded).
"""

from __future__ import annotations

import json
import os
from typing import Mapping

import ml_collections

from vae import checkpoint as ckpt_lib
from vae import objectives

from .configs import default as default_config


# Fields a rerun of a workdir may change: they decide how long, how often and
# on what the run is evaluated or logged, or where its data is read from, not
# what is trained (num_steps extends a run: the learning-rate schedules are
# set by decay_steps, not num_steps).
RERUN_MAY_CHANGE = ("num_steps", "log_every", "checkpoint_every", "eval_every", "eval",
                    "train_loop", "data_dir", "tfds_data_dir", "distributed", "tensorboard",
                    "prefetch_batches", "model.conv_impl")


class ConfigChangedError(ValueError):
  """A rerun's config differs from the one its workdir was trained with."""


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    path = f"{prefix}{k}"
    if isinstance(v, Mapping):
      out.update(_flatten(v, path + "."))
    else:
      out[path] = list(v) if isinstance(v, tuple) else v
  return out


def with_defaults(record: Mapping) -> ml_collections.ConfigDict:
  """A config (a mapping, e.g. read from config.json) with the fields it lacks
  taken from ``experiments/configs/default.py``, flat ``hparams`` upgraded."""
  merged = default_config.get_config().to_dict()

  def merge(into, new):
    for k, v in new.items():
      if isinstance(v, Mapping) and isinstance(into.get(k), dict):
        merge(into[k], v)
      else:
        into[k] = v
  merge(merged, json.loads(json.dumps(dict(record), default=list)))
  return upgrade_config(ml_collections.ConfigDict(merged))


def config_changes(stored, new) -> list[str]:
  """The fields (``path: stored -> new``) in which two configs differ, other
  than those in ``RERUN_MAY_CHANGE``. Both are completed with the defaults
  first, so a field one of them leaves out is not a change."""
  def plain(c):
    c = c.to_dict() if isinstance(c, ml_collections.ConfigDict) else c
    return _flatten(json.loads(with_defaults(c).to_json_best_effort()))
  a, b = plain(stored), plain(new)
  # Your own images' folder IS the data (a moved binarized MNIST folder is not).
  images = b.get("dataset") == "images" or a.get("dataset") == "images"
  free = lambda path: (not (images and path == "data_dir")
                       and any(path == f or path.startswith(f + ".") for f in RERUN_MAY_CHANGE))
  return [f"{p}: {a.get(p, '(absent)')!r} -> {b.get(p, '(absent)')!r}"
          for p in sorted(set(a) | set(b)) if not free(p) and a.get(p) != b.get(p)]


# Fields without which a config.json cannot say what was trained.
REQUIRED_FIELDS = ("seed", "dataset", "objective", "batch_size", "model.architecture",
                   "model.data_shape", "model.latent_dim", "model.likelihood")


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was trained with, from its ``config.json``.

  Fields the file lacks (one written before they existed) take the defaults
  of ``experiments/configs/default.py``; a flat ``hparams`` is upgraded.

  Raises:
    FileNotFoundError: no config.json (not a training run's workdir).
    ValueError: the file is not JSON, or lacks a field that says what was
      trained (``REQUIRED_FIELDS``), naming the file and the fields.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir} a training run's workdir?")
  try:
    with open(path) as f:
      record = json.load(f)
  except ValueError as e:
    raise ValueError(f"{path} is not valid JSON ({e})") from None
  if not isinstance(record, dict):
    raise ValueError(f"{path} must hold a JSON object (a run config), got "
                     f"{type(record).__name__}")
  record.pop("effective", None)             # what was trained; not a config field
  record.pop("non_finite", None)
  flat = _flatten(record)
  missing = [f for f in REQUIRED_FIELDS
             if f not in flat and not any(k.startswith(f + ".") for k in flat)]
  if missing:
    raise ValueError(f"{path} is not a complete run config: it lacks {missing} (a "
                     "config.json written by experiments.train has them)")
  return with_defaults(record)


def check_rerun(config, workdir: str) -> None:
  """Refuses to continue a workdir trained with another config.

  Raises:
    ConfigChangedError: listing every changed field (``RERUN_MAY_CHANGE``
      fields may differ).
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path) or not ckpt_lib.all_steps(workdir):
    return        # nothing trained yet (e.g. a run that diverged before its first checkpoint)
  changes = config_changes(load_run_config(workdir), config)
  if changes:
    raise ConfigChangedError(
        f"{workdir} was trained with another config ({path}); a rerun would mix two "
        "experiments in one record. Changed fields:\n  " + "\n  ".join(changes) +
        "\nUse a new --workdir, or rerun with the stored values (only "
        f"{', '.join(RERUN_MAY_CHANGE)} may change).")


def check_rerun_data(job, workdir: str) -> None:
  """Refuses to continue a workdir whose training data changed though the
  config did not: another source chosen by ``data_source="auto"`` (on-device
  sampling and streaming draw different batches), or images added to or
  removed from the folder (N and so every epoch's order change).

  Raises:
    ConfigChangedError: naming what changed.
  """
  path = os.path.join(workdir, "config.json")
  if not job.data_fingerprint or not os.path.exists(path) or not ckpt_lib.all_steps(workdir):
    return
  with open(path) as f:
    stored = (json.load(f).get("effective") or {}).get("data")
  if not stored:
    return            # written before the fingerprint existed
  changed = [f"{k}: {stored.get(k)!r} -> {v!r}" for k, v in job.data_fingerprint.items()
             if k in stored and stored[k] != v]
  if changed:
    raise ConfigChangedError(
        f"{workdir} was trained on other data than this rerun would read ({path}, "
        "effective.data):\n  " + "\n  ".join(changed) + "\nA resumed run would not "
        "continue the same experiment. Use a new --workdir, or restore the data (set "
        "data_source explicitly where 'auto' chose differently on this machine).")


def check_classes_unchanged(job, workdir: str) -> None:
  """A conditional model is evaluated on labels numbered as it was trained:
  the data's class names are those stored in ``config.json``
  (``effective.data.classes``), or a class folder added or missing would
  renumber every label after it.

  Raises:
    ValueError: naming both lists.
  """
  if job.labels is None:
    return
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path) as f:
    stored = ((json.load(f).get("effective") or {}).get("data") or {}).get("classes")
  now = list(job.labels.class_names)
  if stored is not None and stored != now:
    raise ValueError(f"{workdir} was trained on the classes {stored}; these data have {now}, "
                     "which would number the labels otherwise: evaluate on data with the "
                     "same class folders")


def check_unrecorded_checkpoints(job, workdir: str) -> bool:
  """A workdir with checkpoints but no config.json (deleted, or lost): the
  config given may continue it only if the newest readable checkpoint
  restores into its model and optimizer (every array's shape and dtype);
  nothing is written before that is known. Returns whether that was the case
  (the caller then writes config.json again).

  Raises:
    ConfigChangedError: the checkpoints do not fit the config, with what to do.
  """
  if os.path.exists(os.path.join(workdir, "config.json")) or not ckpt_lib.all_steps(workdir):
    return False
  import jax
  from vae import train as train_lib
  target = jax.eval_shape(lambda: train_lib.restore_target(job.model, job.optimizer,
                                                           job.objective))
  step = ckpt_lib.latest_step(workdir)
  try:
    differences = ckpt_lib.shape_mismatches(workdir, target, step)
  except Exception as e:  # pylint: disable=broad-except  (unreadable metadata: training says which)
    differences = [f"its metadata cannot be read ({type(e).__name__})"]
  if differences:
    shown = "\n  ".join(differences[:8]) + (f"\n  ... and {len(differences) - 8} more"
                                            if len(differences) > 8 else "")
    raise ConfigChangedError(
        f"{workdir} holds checkpoints but no config.json, and checkpoint {step} does not "
        f"fit this config:\n  {shown}\nNothing was written. Rerun with the config it was "
        "trained with (its model, objective and optimizer), or use a new --workdir.")
  return True


def absolute_paths(config):
  """A copy of ``config`` whose data folders are absolute, so that the
  config.json it writes works from any current directory."""
  config = ml_collections.ConfigDict(config.to_dict())
  for field in ("data_dir", "tfds_data_dir"):
    if config.get(field) and "://" not in config[field]:     # gs://... stays as it is
      config[field] = os.path.abspath(os.path.expanduser(config[field]))
  return config


def upgrade_config(config):
  """A config written before hyperparameters were nested per objective (a
  flat ``hparams`` of values, as in an older workdir's config.json) in
  today's form: the objective's section takes the flat values it has fields
  for, every other section its defaults. Other configs come back unchanged."""
  flat = {k: v for k, v in config.hparams.items()
          if not isinstance(v, (Mapping, ml_collections.ConfigDict))}
  if not flat:
    return config
  config = ml_collections.ConfigDict(config.to_dict())
  nested = objectives.default_hparams()
  names = objectives.get(config.objective).hparam_names()
  nested[config.objective].update({k: v for k, v in flat.items() if k in names})
  if "dataset_size" in nested[config.objective]:
    nested[config.objective]["dataset_size"] = int(nested[config.objective]["dataset_size"] or 0)
  config.hparams = ml_collections.ConfigDict(nested)
  return config
