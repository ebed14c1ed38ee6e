"""A config turned into the plain arguments and objects the library takes.

This is where config stops (docs/design.md, "Where config stops"): each
function reads one section of a run's ``ConfigDict`` and returns what
``vae`` takes (a model, a bound objective, an optax transformation, a
training schedule, an evaluation spec, data settings). No function under
``vae/`` reads a config.
"""

from __future__ import annotations

from typing import Any

from vae import data as data_lib
from vae import evaluate as ev
from vae import model as model_lib
from vae import objectives
from vae import optim
from vae import parallel
from vae import train as train_lib

TRAIN_LOOPS = ("auto", "scan", "per_step")   # "auto": scan (vae.train.Schedule.loop)


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
      compute_dtype=m.get("compute_dtype", "float32"), conv_impl=m.get("conv_impl", "auto"),
      posterior_family=m.get("posterior_family", "gaussian"),
      posterior_hparams=_section(m, "posterior_hparams", m.get("posterior_family", "gaussian")),
      prior=m.get("prior", "standard_normal"),
      prior_hparams=_section(m, "prior_hparams", m.get("prior", "standard_normal")),
      num_classes=int(m.get("num_classes", 0)))


def _section(model_config, field: str, name: str) -> dict:
  """The hyperparameters of ``name`` in ``model.<field>`` (every family's
  defaults live there, as the objectives' do in ``hparams``); {} when absent."""
  sections = model_config.get(field) or {}
  return dict(sections.get(name) or {})


def build_objective(config, num_train: int | None = None) -> objectives.BoundObjective:
  """The bound objective; a ``dataset_size`` hyperparameter left at 0 (beta-TCVAE's
  N) becomes ``num_train``."""
  objective = objectives.get(config.objective).bind(**objective_hparams(config))
  if getattr(objective.hparams, "dataset_size", None) == 0 and num_train:
    objective = objective.replace(dataset_size=int(num_train))
  return objective


def optimizer_section(group: str) -> str:
  """The config section of an objective's extra parameter group's optimizer
  (FactorVAE's "discriminator": ``discriminator_optim``)."""
  return f"{group}_optim"


def make_optimizer(config, section: str = "optim"):
  """One optax transformation from config section ``section``; a bad value
  is a ValueError naming the section's field."""
  try:
    return optim.make_optimizer(**dict(config[section]))
  except (ValueError, TypeError) as e:
    raise ValueError(f"{section}: {e}") from None


def build_optimizer(config, objective: objectives.BoundObjective):
  extra = {g: make_optimizer(config, optimizer_section(g))
           for g in objective.record.extra_optimizers}
  return objective.make_optimizer(make_optimizer(config), extra)


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


def data_settings(config, *, split: str | None = None, with_train: bool = True,
                  with_eval: bool = True) -> data_lib.DataSettings:
  """The config's data as ``vae.data.DataSettings`` (evaluation: ``split``,
  default ``eval.split``, its first ``eval.max_examples``; a ground-truth
  set's held-out renders are drawn with the run's eval key)."""
  return data_lib.DataSettings(
      name=config.dataset, data_dir=config.get("data_dir") or None,
      tfds_data_dir=config.get("tfds_data_dir") or None,
      source=config.get("data_source", "auto"), data_shape=tuple(config.model.data_shape),
      validation_fraction=float(config.get("validation_fraction", 0.1)),
      max_train_examples=int(config.get("max_train_examples", 0)),
      eval_split=split or config.eval.split,
      eval_examples=int(config.eval.get("max_examples", 0)),
      eval_key=train_lib.named_keys(int(config.seed))["eval"],
      label=config.get("label", ""),
      with_train=with_train, with_eval=with_eval)


def initialize_distributed(config) -> None:
  """``jax.distributed.initialize`` from ``config.distributed`` when it is
  enabled (before anything else touches JAX)."""
  d = config.get("distributed")
  if d and d.get("enabled", False):
    parallel.initialize_distributed(d.get("coordinator_address", ""),
                                    int(d.get("num_processes", -1)),
                                    int(d.get("process_id", -1)))

