"""The main job: a config resolved once into plain objects, then trained,
evaluated and drawn.

``resolve(config)`` checks the config and turns it into a ``Job``: the model,
the bound objective (its hyperparameters from ``config.hparams.<objective>``,
the paper's defaults for the rest), the optimizer, the training and
evaluation data, the training ``Schedule`` and the ``EvalSpec``. Nothing
below this layer reads a config. ``train_and_evaluate(config, workdir)`` is
what ``python -m experiments.train`` runs.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any, Mapping

import jax
import ml_collections
import numpy as np

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
from vae.data import sources


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
  eval_spec(config)
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
      dci_importance=e.get("dci_importance", "gbt"))


def load_data(config, spec: ev.EvalSpec, eval_key, split: str | None = None):
  """(training data, evaluation data [N, *shape]) of a config.

  A ground-truth data set is returned whole for training (sampled each step)
  with a fixed held-out sample of its renders for evaluation; an array data
  set gives its training split and ``split`` (default ``spec.split``).
  """
  if data_lib.is_ground_truth(config.dataset):
    train_data = data_lib.load_ground_truth(config.dataset, config.get("tfds_data_dir") or None)
    eval_data = sources.ground_truth_eval_sample(train_data, spec.max_examples or 10_000,
                                                 eval_key)
    return train_data, eval_data
  return (load_split(config, "train", config.get("max_train_examples", 0)),
          load_split(config, split or spec.split, spec.max_examples))


def load_split(config, split: str, max_examples: int = 0) -> np.ndarray:
  """Host array of an array data set's split, optionally truncated."""
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
  schedule: train_lib.Schedule
  eval_spec: ev.EvalSpec
  batch_size: int
  seed: int
  dataset: str

  @property
  def keys(self):
    return train_lib.named_keys(self.seed)

  @property
  def ground_truth(self) -> bool:
    return data_lib.is_ground_truth(self.dataset)

  def effective_config(self) -> dict[str, Any]:
    """What was trained, defaults included: the objective and every one of its
    hyperparameters (recorded in config.json)."""
    return {"objective": self.objective.name,
            "hparams": dataclasses.asdict(self.objective.hparams),
            "reference": self.objective.record.reference}


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
  eval_data = None
  if train_data is None and with_data:
    train_data, eval_data = load_data(config, spec, train_lib.named_keys(config.seed)["eval"])
    checks.check_data(eval_data, data_shape=model.data_shape, likelihood=model.likelihood,
                      name="evaluation data")
  num_train = sources.num_examples(train_data) if train_data is not None else None
  objective = build_objective(config, num_train)
  return Job(model=model, objective=objective, optimizer=build_optimizer(config, objective),
             train_data=train_data, eval_data=eval_data, num_train=num_train,
             schedule=schedule(config), eval_spec=spec, batch_size=int(config.batch_size),
             seed=int(config.seed), dataset=config.dataset)


def train(config, workdir: str, train_data=None, *, eval_fn=None, progress: bool = True):
  """Trains a config on ``train_data`` (default: the config's own training
  data) without evaluating: ``vae.train.train`` with the config's objects.

  Returns:
    The final ``TrainState``.
  """
  if train_data is None:
    check_config(config)
    train_data = load_split(config, "train", config.get("max_train_examples", 0)) \
        if not data_lib.is_ground_truth(config.dataset) else \
        data_lib.load_ground_truth(config.dataset, config.get("tfds_data_dir") or None)
  return _train(resolve(config, train_data=train_data), workdir, eval_fn=eval_fn,
                progress=progress)


def _train(job: Job, workdir: str, *, eval_fn=None, progress: bool = True):
  source = sources.make_source(job.train_data, job.batch_size, job.keys["data"], model=job.model)
  return train_lib.train(workdir, model=job.model, objective=job.objective,
                         optimizer=job.optimizer, source=source, schedule=job.schedule,
                         seed=job.seed, eval_fn=eval_fn, progress=progress)


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
  """The main job: train (resuming if possible), evaluate, write figures.

  Writes to ``workdir``: ``config.json`` (the config, plus the effective
  objective hyperparameters), ``checkpoints/``, ``metrics.jsonl``,
  ``eval_<split>.json``, ``reconstructions.png`` and, for probabilistic
  models, ``traversals.png``, ``traversals.gif`` and ``prior_samples.png``.

  Returns:
    The evaluation dict written to ``eval_<split>.json``.
  """
  job = resolve(config)
  os.makedirs(workdir, exist_ok=True)
  record = json.loads(config.to_json_best_effort())
  record["effective"] = job.effective_config()
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(record, f, indent=2)
  keys, model, spec = job.keys, job.model, job.eval_spec
  probabilistic = job.objective.record.probabilistic
  eval_fn = (ev.periodic_eval_fn(job.eval_data, keys["eval"], model=model, spec=spec,
                                 dataset_size=job.num_train) if probabilistic else None)
  t0 = time.perf_counter()
  state = _train(job, workdir, eval_fn=eval_fn)
  train_seconds = time.perf_counter() - t0
  results = ev.evaluate_params(state.params, job.eval_data, keys["eval"], model=model,
                               probabilistic=probabilistic, spec=spec,
                               dataset_size=job.num_train)
  results.update({"split": spec.split, "step": int(state.step),
                  "train_seconds_this_run": train_seconds,
                  "epochs": int(state.step) * job.batch_size / job.num_train})
  if spec.metrics and job.ground_truth and probabilistic:
    results["disentanglement"] = metrics_lib.score_disentanglement(
        state.params, job.train_data, jax.random.fold_in(keys["eval"], 4), model=model,
        names=list(spec.metrics), scale=spec.metric_scale, dci_importance=spec.dci_importance)
  with open(os.path.join(workdir, f"eval_{spec.split}.json"), "w") as f:
    json.dump(results, f, indent=2)
  write_figures(workdir, state.params, job, results)
  return results


def write_figures(workdir: str, params, job: Job, results: dict[str, Any]) -> None:
  model, data = job.model, job.eval_data
  plots.save_reconstructions(os.path.join(workdir, "reconstructions.png"), params,
                             data[:32], model=model)
  if job.objective.record.probabilistic:
    kl = results["elbo"]["kl_per_dim"]
    plots.save_traversals(os.path.join(workdir, "traversals.png"), params, data[0],
                          model=model, kl_per_dim=kl)
    plots.save_traversal_gif(os.path.join(workdir, "traversals.gif"), params, data[0],
                             model=model, kl_per_dim=kl)
    plots.save_prior_samples(os.path.join(workdir, "prior_samples.png"), params,
                             jax.random.fold_in(job.keys["eval"], 2), model=model)


def restore_state(workdir: str, job: Job):
  """The newest checkpoint of ``workdir`` for ``job``'s model and optimizer."""
  target = train_lib.init_state(jax.random.key(0), job.model, job.optimizer, job.objective)
  return ckpt_lib.restore(workdir, target)
