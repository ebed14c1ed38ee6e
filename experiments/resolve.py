"""A config resolved once into a ``Job``: the model, the bound objective,
the optimizer, the training and evaluation data, the training schedule and
the evaluation spec. Nothing below this layer reads a config.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from vae import checkpoint as ckpt_lib
from vae import checks
from vae import conditioning as cond_lib
from vae import data as data_lib
from vae import evaluate as ev
from vae import model as model_lib
from vae import objectives
from vae import train as train_lib
from vae.data import sources
from vae.data.ground_truth import GroundTruthData

from . import build
from .config_checks import check_config
from .rerun import load_run_config


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
  labels: data_lib.Labels | None = None

  @property
  def eval_set(self):
    """What evaluation reads: the evaluation images, with their labels
    (``Labeled``) for a conditional model."""
    if self.model.conditioning is None or self.eval_data is None:
      return self.eval_data
    return cond_lib.Labeled(self.eval_data, self.labels.eval)

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


def open_data(config, *, split: str | None = None, with_train: bool = True,
              with_eval: bool = True) -> data_lib.Opened:
  """The config's data set opened (``vae.data.open_dataset``)."""
  return data_lib.open_dataset(build.data_settings(config, split=split, with_train=with_train,
                                                   with_eval=with_eval))


def load_split(config, split: str, max_examples: int = 0) -> np.ndarray:
  """Host array of a stored split of the config's data set (of your own
  images: float32 in [0, 1]), optionally truncated (images past it are not
  read)."""
  record = data_lib.get(config.dataset)
  if record.load_split is None:
    raise ValueError(f"{config.dataset!r} has no stored splits (a ground-truth set is "
                     "sampled: vae.data.load_ground_truth)")
  return record.load_split(split, build.data_settings(config), max_examples)


def resolve(config, with_data: bool = True, train_data=None, labels=None) -> Job:
  """Checks ``config`` and resolves it once into a ``Job``.

  Args:
    config: the run's ``ConfigDict``.
    with_data: load the config's training and evaluation data (False: no
      data; the job's N and data are then None).
    train_data: train on this instead of the config's data (an array or a
      ground-truth set); no evaluation data is loaded then.
    labels: ``train_data``'s labels (``vae.data.Labels``) for a conditional
      model.
  """
  check_config(config)
  model = build.build_model(config)
  eval_data = ground_truth = None
  fingerprint = {}
  if train_data is None and with_data:
    data = open_data(config)
    train_data, eval_data, ground_truth = data.train, data.eval, data.ground_truth
    fingerprint, labels = data.fingerprint, data.labels
    checks.check_model_fits(model.data_shape, np.shape(eval_data)[1:],
                            f"the {config.dataset!r} evaluation data")
    checks.check_data(eval_data, data_shape=model.data_shape, likelihood=model.likelihood,
                      name="evaluation data")
    ev.check_eval_size(len(eval_data), spec=build.eval_spec(config),
                       probabilistic=objectives.get(config.objective).probabilistic)
    if model.conditioning is not None and labels is not None:
      model.conditioning.check_classes(labels.class_names)
      cond_lib.check_labels(labels.eval, model.conditioning.num_classes, "evaluation labels")
  elif isinstance(train_data, GroundTruthData):
    ground_truth = train_data
  num_train = sources.num_examples(train_data) if train_data is not None else None
  objective = build.build_objective(config, num_train)
  return Job(model=model, objective=objective,
             optimizer=build.build_optimizer(config, objective),
             train_data=train_data, eval_data=eval_data, num_train=num_train,
             ground_truth_data=ground_truth, schedule=build.schedule(config),
             eval_spec=build.eval_spec(config), batch_size=int(config.batch_size),
             seed=int(config.seed), dataset=config.dataset,
             prefetch_batches=int(config.get("prefetch_batches", 8)),
             data_fingerprint=fingerprint, labels=labels)


def restore_state(workdir: str, job: Job):
  """The newest readable checkpoint of ``workdir`` for ``job``'s model and
  optimizer (a damaged newest one is skipped with a warning, as in training).

  Raises:
    vae.checkpoint.CheckpointError: no checkpoint, or none can be read.
  """
  target = train_lib.restore_target(job.model, job.optimizer, job.objective)
  state, step = ckpt_lib.restore_latest(workdir, target)
  if step is None:
    raise ckpt_lib.CheckpointError(f"no checkpoint under {workdir}/checkpoints")
  return state


def restore_params(workdir: str):
  """(model, params) of a workdir's newest readable checkpoint, from its
  own config.json (no data loaded)."""
  job = resolve(load_run_config(workdir), with_data=False)
  return job.model, restore_state(workdir, job).params
