"""The main job: a config resolved once into plain objects, then trained,
evaluated and drawn.

``resolve(config)`` checks the config and turns it into a ``Job``: the model,
the bound objective (its hyperparameters from ``config.hparams.<objective>``,
the paper's defaults for the rest), the optimizer, the training and
evaluation data, the training ``Schedule`` and the ``EvalSpec``. Nothing
below this layer reads a config. ``train_and_evaluate(config, workdir)`` is
what ``python -m experiments.train`` runs: it locks the workdir, refuses a
rerun whose config changed what is trained (``check_rerun``), stores data
folders as absolute paths, and fails with ``NonFiniteEvaluationError`` when
the final evaluation is not finite (after writing it as strict JSON);
``EXIT_CODES`` maps these failures to the entry points' exit codes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np

from .configs import default as default_config
from vae import checkpoint as ckpt_lib
from vae import checks
from vae import data as data_lib
from vae import evaluate as ev
from vae import metrics as metrics_lib
from vae import model as model_lib
from vae import objectives
from vae import optim
from vae import plots
from vae import train as train_lib
from vae import workdir as workdir_lib
from vae import writers as writers_lib
from vae.data import images as images_lib
from vae.data import sources
from vae.data import streaming
from vae.data.ground_truth import GroundTruthData


TRAIN_LOOPS = ("auto", "scan", "per_step")   # "auto": scan (vae.train.Schedule.loop)


def check_config(config) -> None:
  """Validates the config's values before any data is loaded or traced.

  Raises:
    ValueError: naming the field, the expected range and the value given.
  """
  def need(cond, msg):
    if not cond:
      raise ValueError(msg)

  need(int(config.model.latent_dim) >= 1,
       f"model.latent_dim must be a positive integer, got {config.model.latent_dim}")
  record = objectives.get(config.objective)
  objective_hparams(config)                       # unknown names and bad values
  need(int(config.batch_size) >= 1, f"batch_size must be >= 1, got {config.batch_size}")
  schedule(config)
  unknown = [m for m in config.eval.get("metrics", ()) if m not in metrics_lib.METRICS]
  need(not unknown, f"eval.metrics must be among {sorted(metrics_lib.METRICS)}, got {unknown}")
  need(not config.eval.get("metrics") or data_lib.is_ground_truth(config.dataset),
       f"eval.metrics {list(config.eval.metrics)} need a data set with known generative "
       f"factors (dsprites, smallnorb, tfds:...); {config.dataset!r} has none: set "
       "eval.metrics=() or train on a ground-truth data set")
  spec = eval_spec(config)
  if spec.score_every:
    unknown = [m for m in spec.score_metrics if m not in metrics_lib.METRICS]
    need(not unknown, f"eval.score_metrics must be among {sorted(metrics_lib.METRICS)}, got "
         f"{unknown}")
    need(data_lib.is_ground_truth(config.dataset),
         f"eval.score_every={spec.score_every} scores disentanglement during training, which "
         f"needs a data set with known generative factors; {config.dataset!r} has none: set "
         "eval.score_every=0")
    every = int(config.get("eval_every", 0))
    need(every > 0 and spec.score_every % every == 0,
         f"eval.score_every ({spec.score_every}) must be a multiple of eval_every ({every}): "
         "scores are taken by the periodic evaluation")
  need(config.get("data_source", "auto") in ("auto", "memory", "stream"),
       f"data_source must be 'auto', 'memory' or 'stream', got {config.get('data_source')!r}")
  need(int(config.get("prefetch_batches", 8)) >= 1,
       f"prefetch_batches must be >= 1, got {config.get('prefetch_batches')}")
  if config.dataset == "images":
    need(bool(config.get("data_dir")), "dataset='images' needs config.data_dir: a folder of "
         "image files (searched recursively) or an .npz holding 'images'")
    need(0.0 <= float(config.get("validation_fraction", 0.1)) < 1.0,
         f"validation_fraction must be in [0, 1), got {config.get('validation_fraction')}")
    shape = tuple(config.model.data_shape)
    need(len(shape) == 3 and shape[-1] in (1, 3),
         f"dataset='images' needs model.data_shape (H, W, 1) for grayscale or (H, W, 3) for "
         f"RGB, got {shape}")
  need(config.get("train_loop", "auto") in TRAIN_LOOPS,
       f"train_loop must be one of {TRAIN_LOOPS}, got {config.get('train_loop')!r}")
  need(float(config.optim.learning_rate) > 0,
       f"optim.learning_rate must be > 0, got {config.optim.learning_rate}")
  need(float(config.optim.get("grad_clip_norm", 0.0)) >= 0,
       f"optim.grad_clip_norm must be >= 0 (0 disables), got {config.optim.grad_clip_norm}")
  optim.make_schedule(config.optim)
  for section in record.extra_optimizers:
    need(section in config, f"objective {config.objective!r} needs config.{section} "
         "(the optimizer of its extra parameters)")
    need(float(config[section].learning_rate) > 0,
         f"{section}.learning_rate must be > 0, got {config[section].learning_rate}")
    optim.make_schedule(config[section])


# Fields a rerun of a workdir may change: they decide how long, how often and
# on what the run is evaluated or logged, or where its data is read from, not
# what is trained (num_steps extends a run: the learning-rate schedules are
# set by decay_steps, not num_steps).
RERUN_MAY_CHANGE = ("num_steps", "log_every", "checkpoint_every", "eval_every", "eval",
                    "train_loop", "data_dir", "tfds_data_dir", "distributed", "tensorboard",
                    "prefetch_batches")


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


def objective_hparams(config) -> dict[str, Any]:
  """The chosen objective's section of ``config.hparams``; every section is
  checked against its objective (an unknown section or field is an error)."""
  unknown = sorted(set(config.hparams) - set(objectives.REGISTRY))
  if unknown:
    raise ValueError(f"config.hparams has sections {unknown} that name no objective; "
                     f"objectives: {sorted(objectives.REGISTRY)}")
  for name, section in config.hparams.items():
    objectives.get(name).make_hparams(dict(section))
  section = config.hparams.get(config.objective)
  return {} if section is None else dict(section)


def build_model(config) -> model_lib.Model:
  m = config.model
  return model_lib.make_model(
      architecture=m.architecture, data_shape=tuple(m.data_shape),
      latent_dim=m.latent_dim, likelihood=m.likelihood, posterior=m.posterior,
      encoder_hidden=tuple(m.encoder_hidden), decoder_hidden=tuple(m.decoder_hidden),
      activation=m.activation, obs_logvar=m.get("obs_logvar", 0.0),
      obs_variance=m.get("obs_variance", "fixed"),
      min_obs_logvar=m.get("min_obs_logvar", model_lib.MIN_OBS_LOGVAR),
      compute_dtype=m.get("compute_dtype", "float32"))


def build_objective(config, num_train: int | None = None) -> objectives.BoundObjective:
  """The bound objective; a ``dataset_size`` hyperparameter left at 0 (beta-TCVAE's
  N) becomes ``num_train``."""
  objective = objectives.get(config.objective).bind(**objective_hparams(config))
  if getattr(objective.hparams, "dataset_size", None) == 0 and num_train:
    objective = objective.replace(dataset_size=int(num_train))
  return objective


def build_optimizer(config, objective: objectives.BoundObjective):
  extra = {s: optim.make_optimizer(config[s]) for s in objective.record.extra_optimizers}
  return objective.make_optimizer(optim.make_optimizer(config.optim), extra)


def schedule(config) -> train_lib.Schedule:
  loop = config.get("train_loop", "auto")
  return train_lib.Schedule(
      num_steps=int(config.num_steps), log_every=int(config.log_every),
      checkpoint_every=int(config.checkpoint_every),
      eval_every=int(config.get("eval_every", 0)), loop="scan" if loop == "auto" else loop)


def eval_spec(config) -> ev.EvalSpec:
  e = config.eval
  return ev.EvalSpec(
      split=e.split, max_examples=int(e.get("max_examples", 0)),
      num_importance_samples=e.num_importance_samples, iwae_batch_size=int(e.iwae_batch_size),
      chunk_size=int(e.chunk_size), elbo_batch_size=int(e.elbo_batch_size),
      diagnostics_batch_size=int(e.get("diagnostics_batch_size", 256)),
      metrics=tuple(e.get("metrics", ())), metric_scale=float(e.get("metric_scale", 1.0)),
      dci_importance=e.get("dci_importance", "gbt"), score_every=int(e.get("score_every", 0)),
      score_metrics=tuple(e.get("score_metrics", ())))


@dataclasses.dataclass(frozen=True)
class Data:
  """A config's data, loaded.

  Attributes:
    train: what the training source serves: an array, ``vae.data.images.Images``,
      a ground-truth set, or a reader (``vae.data.streaming``) to stream.
    eval: float32 host array [N, *data_shape] of evaluation examples.
    ground_truth: the set with known factors that metrics sample (None
      without factors).
    fingerprint: what identifies the training data beyond the config
      (recorded in config.json and checked on a rerun): the source
      ("memory": on the device, or "stream": read from the host), N, and
      for image files an MD5 of their list.
  """
  train: Any
  eval: np.ndarray | None
  ground_truth: Any = None
  fingerprint: dict = dataclasses.field(default_factory=dict)

  @property
  def source(self) -> str:
    return self.fingerprint.get("source", "memory")


def data_source_kind(config, nbytes) -> str:
  """"memory" or "stream": ``config.data_source``, with "auto" streaming data
  (``nbytes`` as stored, or a function giving it) larger than a quarter of
  the device's memory (``vae.data.streaming.choose_source``). Procedural
  dSprites is always rendered on the device."""
  kind = config.get("data_source", "auto")
  if config.dataset == "dsprites":
    if kind == "stream":
      raise ValueError("data_source='stream' reads stored data; procedural dsprites is "
                       "rendered on the device: use data_source='auto' or 'memory' (or "
                       "dataset='tfds:dsprites' to stream the stored set)")
    return "memory"
  if kind == "auto" and callable(nbytes):
    nbytes = nbytes()
  if kind == "auto" and config.dataset.startswith("tfds:") and not streaming.is_random_access(
      config.dataset[5:], config.get("tfds_data_dir") or None):
    return "memory"   # tfds reads a tfrecord copy only in sequence: it cannot be streamed
  return streaming.choose_source(kind, nbytes or 0)


def _tfds_bytes(config) -> int:
  import tensorflow_datasets as tfds
  from vae.data.tfds_ground_truth import TFDS_SPECS
  name = config.dataset[5:]
  spec = TFDS_SPECS[name]
  info = tfds.builder(name, data_dir=config.get("tfds_data_dir") or None).info
  if not info.splits:      # not prepared yet: its size is not known here
    return 0
  shape = (spec.resize, spec.resize) + tuple(info.features[spec.image].shape[2:]) \
      if spec.resize else tuple(info.features[spec.image].shape)
  return int(info.splits[spec.split].num_examples) * int(np.prod(shape))


def load_data(config, spec: ev.EvalSpec, eval_key, split: str | None = None,
              with_eval: bool = True) -> Data:
  """The training data, evaluation data and ground truth of a config.

  A ground-truth data set is returned whole for training (sampled each step
  on the device, or streamed: uniform draws with replacement, read from
  disk) with a fixed held-out sample of its renders for evaluation; an array
  data set or your own images give their training split and ``split``
  (default ``spec.split``; only its first ``spec.max_examples`` are read).
  ``with_eval=False`` skips the evaluation data (``Data.eval`` None).
  """
  data_dir = config.get("data_dir") or None
  tfds_dir = config.get("tfds_data_dir") or None
  if data_lib.is_ground_truth(config.dataset):
    kind = data_source_kind(config, (lambda: _tfds_bytes(config))
                            if config.dataset.startswith("tfds:") else None)
    if kind == "stream":
      from vae.data.tfds_ground_truth import StreamedTfdsGroundTruth
      gt = StreamedTfdsGroundTruth(config.dataset[5:], data_dir=tfds_dir)
      train = gt.reader
      train.sampling = "uniform"       # as the on-device source and disentanglement_lib
    else:
      gt = train = data_lib.load_ground_truth(config.dataset, tfds_dir)
    eval_data = (sources.ground_truth_eval_sample(gt, spec.max_examples or 10_000, eval_key)
                 if with_eval else None)
    return Data(train, eval_data, gt, {"source": kind, "num_train": sources.num_examples(gt)})
  if config.dataset == "images":
    shape = tuple(config.model.data_shape)
    frac = float(config.get("validation_fraction", 0.1))
    valid = load_split(config, split or spec.split, spec.max_examples) if with_eval else None
    train = images_lib.image_reader(data_dir, shape, "train", validation_fraction=frac,
                                    max_examples=config.get("max_train_examples", 0))
    kind = data_source_kind(config, streaming.reader_bytes(train))
    fingerprint = {"source": kind, "num_train": train.num_examples,
                   "files_md5": hashlib.md5("\n".join(train.names).encode()).hexdigest()}
    if kind == "memory":
      train = images_lib.Images.from_reader(train)
    return Data(train, valid, None, fingerprint)
  train = load_split(config, "train", config.get("max_train_examples", 0))
  kind = data_source_kind(config, train.nbytes)
  return Data(streaming.ArrayReader(train) if kind == "stream" else train,
              load_split(config, split or spec.split, spec.max_examples) if with_eval else None,
              None, {"source": kind, "num_train": len(train)})


def load_split(config, split: str, max_examples: int = 0) -> np.ndarray:
  """Host array of an array data set's split (or of an image set's, as
  float32 in [0, 1]), optionally truncated (images past it are not read)."""
  if config.dataset == "images":
    return images_lib.Images.from_reader(images_lib.image_reader(
        config.get("data_dir") or "", tuple(config.model.data_shape), split,
        validation_fraction=float(config.get("validation_fraction", 0.1)),
        max_examples=max_examples)).as_float()
  arr = data_lib.load_dataset(config.dataset, split, config.get("data_dir") or None,
                              config.get("tfds_data_dir") or None)
  return arr[:max_examples] if max_examples else arr


@dataclasses.dataclass(frozen=True)
class Job:
  """A config resolved into what the library takes."""
  model: model_lib.Model
  objective: objectives.BoundObjective
  optimizer: Any
  train_data: Any
  eval_data: np.ndarray
  num_train: int
  ground_truth_data: Any
  schedule: train_lib.Schedule
  eval_spec: ev.EvalSpec
  batch_size: int
  seed: int
  dataset: str
  prefetch_batches: int = 8
  data_fingerprint: dict = dataclasses.field(default_factory=dict)

  @property
  def keys(self):
    return train_lib.named_keys(self.seed)

  @property
  def ground_truth(self) -> bool:
    return data_lib.is_ground_truth(self.dataset)

  def effective_config(self) -> dict[str, Any]:
    """What was trained, defaults included: the objective and every one of its
    hyperparameters (recorded in config.json)."""
    out = {"objective": self.objective.name,
           "hparams": dataclasses.asdict(self.objective.hparams),
           "reference": self.objective.record.reference}
    if self.data_fingerprint:
      out["data"] = dict(self.data_fingerprint)
    return out


def resolve(config, with_data: bool = True, train_data=None) -> Job:
  """Checks ``config`` and resolves it once into a ``Job``.

  Args:
    config: the run's ``ConfigDict``.
    with_data: load the config's training and evaluation data (False: no
      data; the job's N and data are then None).
    train_data: train on this instead of the config's data (an array or a
      ground-truth set); no evaluation data is loaded then.
  """
  check_config(config)
  model = build_model(config)
  spec = eval_spec(config)
  eval_data = ground_truth = None
  fingerprint = {}
  if train_data is None and with_data:
    data = load_data(config, spec, train_lib.named_keys(config.seed)["eval"])
    train_data, eval_data, ground_truth = data.train, data.eval, data.ground_truth
    fingerprint = data.fingerprint
    checks.check_data(eval_data, data_shape=model.data_shape, likelihood=model.likelihood,
                      name="evaluation data")
  elif isinstance(train_data, GroundTruthData):
    ground_truth = train_data
  num_train = sources.num_examples(train_data) if train_data is not None else None
  objective = build_objective(config, num_train)
  return Job(model=model, objective=objective, optimizer=build_optimizer(config, objective),
             train_data=train_data, eval_data=eval_data, num_train=num_train,
             ground_truth_data=ground_truth,
             schedule=schedule(config), eval_spec=spec, batch_size=int(config.batch_size),
             seed=int(config.seed), dataset=config.dataset,
             prefetch_batches=int(config.get("prefetch_batches", 8)),
             data_fingerprint=fingerprint)


def train(config, workdir: str, train_data=None, *, eval_fn=None, progress: bool = True):
  """Trains a config on ``train_data`` (default: the config's own training
  data) without evaluating: ``vae.train.train`` with the config's objects.

  Returns:
    The final ``TrainState``.
  """
  check_rerun(config, workdir)
  if train_data is None:
    check_config(config)
    spec = eval_spec(config)
    train_data = load_data(config, spec, train_lib.named_keys(config.seed)["eval"],
                           with_eval=False).train
  return _train(resolve(config, train_data=train_data), workdir, eval_fn=eval_fn,
                progress=progress)


def _train(job: Job, workdir: str, *, eval_fn=None, progress: bool = True, writers=None):
  source = sources.make_source(job.train_data, job.batch_size, job.keys["data"], model=job.model,
                               prefetch=job.prefetch_batches)
  return train_lib.train(workdir, model=job.model, objective=job.objective,
                         optimizer=job.optimizer, source=source, schedule=job.schedule,
                         seed=job.seed, eval_fn=eval_fn, progress=progress, writers=writers)


# The eval key's fold for disentanglement scores: the final scores and the
# periodic ones (eval.score_every) draw the same samples.
SCORE_KEY = 4


class NonFiniteEvaluationError(FloatingPointError):
  """The final evaluation gave NaN or inf; the result file holds nulls and
  the list of those fields (``non_finite``)."""


def train_and_evaluate(config, workdir: str, writers=(), progress: bool = True) -> dict[str, Any]:
  """The main job: train (resuming if possible), evaluate, write figures.

  Writes to ``workdir``: ``config.json`` (the config, plus the effective
  objective hyperparameters), ``checkpoints/``, ``metrics.jsonl``,
  ``tensorboard/`` (with ``config.tensorboard``: the same rows, the final
  evaluation under ``final/`` and the figures), ``eval_<split>.json``,
  ``reconstructions.png`` and, for probabilistic models, ``traversals.png``,
  ``traversals.gif`` and ``prior_samples.png``. ``writers``: more
  ``vae.writers.MetricWriter``s (e.g. Weights & Biases) to send the same to.
  ``progress``: bars for training, evaluation and scoring (on stderr).
  The workdir is locked for the whole job (``vae.workdir.lock``); a rerun
  must have the stored config (``check_rerun``).

  Returns:
    The evaluation dict written to ``eval_<split>.json``.

  Raises:
    ConfigChangedError: the workdir was trained with another config.
    vae.workdir.WorkdirLockedError: another process is using the workdir.
    vae.train.NonFiniteLossError: training diverged (last good checkpoint kept).
    NonFiniteEvaluationError: the final evaluation is not finite (written
      with nulls and a ``non_finite`` list first).
  """
  config = absolute_paths(config)
  job = resolve(config)
  with workdir_lib.lock(workdir):
    check_rerun(config, workdir)
    check_rerun_data(job, workdir)
    record = json.loads(config.to_json_best_effort())
    record["effective"] = job.effective_config()
    workdir_lib.write_json(os.path.join(workdir, "config.json"), record, indent=2)
    out = writers_lib.Writers(
        writers_lib.default_writers(workdir, bool(config.get("tensorboard", True)))
        + list(writers))
    try:
      return _train_and_evaluate(job, workdir, out, progress)
    finally:
      out.close()


def _train_and_evaluate(job: Job, workdir: str, out, progress: bool = True) -> dict[str, Any]:
  keys, model, spec = job.keys, job.model, job.eval_spec
  probabilistic = job.objective.record.probabilistic
  eval_fn = ev.periodic_eval_fn(job.eval_data, keys["eval"], model=model, spec=spec,
                                dataset_size=job.num_train, probabilistic=probabilistic,
                                ground_truth=job.ground_truth_data,
                                score_key=jax.random.fold_in(keys["eval"], SCORE_KEY))
  t0 = time.perf_counter()
  state = _train(job, workdir, eval_fn=eval_fn, writers=out, progress=progress)
  train_seconds = time.perf_counter() - t0
  results = ev.evaluate_params(state.params, job.eval_data, keys["eval"], model=model,
                               probabilistic=probabilistic, spec=spec,
                               dataset_size=job.num_train, progress=progress)
  results.update({"split": spec.split, "step": int(state.step),
                  "train_seconds_this_run": train_seconds,
                  "epochs": int(state.step) * job.batch_size / job.num_train})
  if spec.metrics:
    results["disentanglement"] = metrics_lib.score_disentanglement(
        state.params, job.ground_truth_data, jax.random.fold_in(keys["eval"], SCORE_KEY),
        model=model,
        names=list(spec.metrics), scale=spec.metric_scale, dci_importance=spec.dci_importance,
        progress=progress)
  path = os.path.join(workdir, f"eval_{spec.split}.json")
  bad = workdir_lib.write_json(path, results, indent=2)
  out.write_scalars(int(state.step), "final", results)
  if bad:
    raise NonFiniteEvaluationError(
        f"the evaluation at step {int(state.step)} is not finite ({', '.join(bad)}): the "
        f"model has diverged. {path} holds null for those values and lists them under "
        "\"non_finite\"; the checkpoints are kept. Lower optim.learning_rate or set "
        "optim.grad_clip_norm, and train in a new workdir.")
  figures = write_figures(workdir, state.params, job, results)
  out.write_images(int(state.step), {os.path.splitext(os.path.basename(f))[0]:
                                     writers_lib.read_png(f) for f in figures})
  return results


# Exit codes of the command-line entry points (README, "What a run writes").
EXIT_CODES = {
    "NonFiniteLossError": 3,        # training diverged; last good checkpoint kept
    "NonFiniteEvaluationError": 4,  # final evaluation not finite; nulls written
    "WorkdirLockedError": 5,        # another process is using the workdir
    "ConfigChangedError": 6,        # the workdir was trained with another config
    "CheckpointError": 7,           # checkpoints exist but none can be read
}


_EXIT_CLASSES = ((train_lib.NonFiniteLossError, 3), (NonFiniteEvaluationError, 4),
                 (workdir_lib.WorkdirLockedError, 5), (ConfigChangedError, 6),
                 (ckpt_lib.CheckpointError, 7))


def exit_on_known_failure(fn, *args, **kwargs):
  """Runs ``fn``; a failure listed in ``EXIT_CODES`` prints its message to
  stderr (no traceback: the message says what to do) and exits with its code."""
  try:
    return fn(*args, **kwargs)
  except tuple(cls for cls, _ in _EXIT_CLASSES) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    sys.exit(next(code for cls, code in _EXIT_CLASSES if isinstance(e, cls)))


def write_figures(workdir: str, params, job: Job, results: dict[str, Any]) -> list[str]:
  """Writes the run's PNG figures (and the traversal GIF); returns the PNG paths."""
  model, data = job.model, job.eval_data
  paths = [plots.save_reconstructions(os.path.join(workdir, "reconstructions.png"), params,
                                      data[:32], model=model)]
  if job.objective.record.probabilistic:
    kl = results["elbo"]["kl_per_dim"]
    paths.append(plots.save_traversals(os.path.join(workdir, "traversals.png"), params,
                                       data[0], model=model, kl_per_dim=kl))
    plots.save_traversal_gif(os.path.join(workdir, "traversals.gif"), params, data[0],
                             model=model, kl_per_dim=kl)
    paths.append(plots.save_prior_samples(os.path.join(workdir, "prior_samples.png"), params,
                                          jax.random.fold_in(job.keys["eval"], 2),
                                          model=model))
  return paths


def restore_params(workdir: str):
  """(model, params) of a workdir's newest readable checkpoint, from its
  own config.json (no data loaded)."""
  job = resolve(load_run_config(workdir), with_data=False)
  return job.model, restore_state(workdir, job).params


def restore_state(workdir: str, job: Job):
  """The newest readable checkpoint of ``workdir`` for ``job``'s model and
  optimizer (a damaged newest one is skipped with a warning, as in training).

  Raises:
    vae.checkpoint.CheckpointError: no checkpoint, or none can be read.
  """
  target = train_lib.init_state(jax.random.key(0), job.model, job.optimizer, job.objective)
  state, step = ckpt_lib.restore_latest(workdir, target)
  if step is None:
    raise ckpt_lib.CheckpointError(f"no checkpoint under {workdir}/checkpoints")
  return state
