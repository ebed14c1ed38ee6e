"""Checks of a run's config before any data is loaded or traced: each bad
value is a ValueError naming the field, what was expected and what came."""

from __future__ import annotations

from vae import data as data_lib
from vae import metrics as metrics_lib
from vae import objectives
from vae import posteriors
from vae import priors

from . import build


def _need(cond, msg):
  if not cond:
    raise ValueError(msg)


def _check_metrics(config) -> None:
  ground_truth = data_lib.is_ground_truth(config.dataset)
  metrics_lib.check_names(config.eval.get("metrics", ()), "eval.metrics")
  _need(not config.eval.get("metrics") or ground_truth,
        f"eval.metrics {list(config.eval.metrics)} need a data set with known generative "
        f"factors ({', '.join(data_lib.GROUND_TRUTH)}); {config.dataset!r} has none: set "
        "eval.metrics=() or train on a ground-truth data set")
  spec = build.eval_spec(config)
  if not spec.score_every:
    return
  metrics_lib.check_names(spec.score_metrics, "eval.score_metrics")
  _need(ground_truth,
        f"eval.score_every={spec.score_every} scores disentanglement during training, which "
        f"needs a data set with known generative factors; {config.dataset!r} has none: set "
        "eval.score_every=0")
  every = int(config.get("eval_every", 0))
  _need(every > 0 and spec.score_every % every == 0,
        f"eval.score_every ({spec.score_every}) must be a multiple of eval_every ({every}): "
        "scores are taken by the periodic evaluation")


def _check_conditioning(config) -> None:
  n, label = config.model.get("num_classes", 0), config.get("label", "")
  _need(isinstance(n, int) and n >= 0,
        f"model.num_classes must be an integer >= 0 (0: no conditioning), got {n!r}")
  _need(bool(n) == bool(label),
        "model.num_classes and label go together: a conditional VAE (Sohn et al. 2015) reads "
        "the labels that `label` names ('class', or a factor of a ground-truth set) with "
        f"model.num_classes classes; got model.num_classes={n} and label={label!r}")
  if n:
    _need(not config.eval.get("metrics") and not build.eval_spec(config).score_every,
          "the disentanglement metrics encode renders without their labels, which a "
          "conditional model's encoder reads: set eval.metrics=() and eval.score_every=0 "
          f"(label={label!r})")


def _check_optimizers(config, record) -> None:
  _need(float(config.optim.learning_rate) > 0,
        f"optim.learning_rate must be > 0, got {config.optim.learning_rate}")
  _need(float(config.optim.get("grad_clip_norm", 0.0)) >= 0,
        f"optim.grad_clip_norm must be >= 0 (0 disables), got {config.optim.grad_clip_norm}")
  build.make_optimizer(config)
  for group in record.extra_optimizers:
    section = build.optimizer_section(group)
    _need(section in config, f"objective {config.objective!r} needs config.{section} "
          f"(the optimizer of its {group})")
    _need(float(config[section].learning_rate) > 0,
          f"{section}.learning_rate must be > 0, got {config[section].learning_rate}")
    build.make_optimizer(config, section)


def check_config(config) -> None:
  """Validates the config's values before any data is loaded or traced.

  Raises:
    ValueError: naming the field, the expected range and the value given.
  """
  _need(int(config.model.latent_dim) >= 1,
        f"model.latent_dim must be a positive integer, got {config.model.latent_dim}")
  record = objectives.get(config.objective)
  build.objective_hparams(config)                       # unknown names and bad values
  _need(int(config.batch_size) >= 1, f"batch_size must be >= 1, got {config.batch_size}")
  build.schedule(config)
  _check_metrics(config)
  _check_conditioning(config)
  _need(int(config.get("prefetch_batches", 8)) >= 1,
        f"prefetch_batches must be >= 1, got {config.get('prefetch_batches')}")
  data_lib.check_settings(build.data_settings(config))   # data_source, the set's own checks
  _need(config.get("train_loop", "auto") in build.TRAIN_LOOPS,
        f"train_loop must be one of {build.TRAIN_LOOPS}, got {config.get('train_loop')!r}")
  _check_optimizers(config, record)
  _check_latent_sections(config)
  record.check_model(build.build_model(config))     # a family or prior it cannot train


def _check_latent_sections(config) -> None:
  """Every section of ``model.posterior_hparams`` / ``model.prior_hparams``
  names a family / prior and holds only its hyperparameters, valid ones."""
  for field, lib in (("posterior_hparams", posteriors), ("prior_hparams", priors)):
    for name, section in (config.model.get(field) or {}).items():
      try:
        lib.make(name, **dict(section or {}))
      except (ValueError, TypeError) as e:
        raise ValueError(f"model.{field}.{name}: {e}") from None
