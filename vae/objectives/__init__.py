"""Objectives by name: ``get_objective(name)`` and hyperparameter checks.

Every objective has the form
``loss(params, batch, key, *, model, **hparams) -> (scalar, aux)``
(DESIGN.md, contract 3).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Mapping

from vae.objectives import factor_vae
from vae.objectives.autoencoders import CORRUPTIONS, ae_loss, dae_loss
from vae.objectives.dip_vae import dip_vae_i_loss, dip_vae_ii_loss, dip_vae_loss
from vae.objectives.elbo import annealed_vae_loss, batch_elbo_terms, capacity, vae_loss
from vae.objectives.factor_vae import discriminator_loss, factor_vae_loss
from vae.objectives.iwae import iwae_bound, iwae_loss, log_importance_weights
from vae.objectives.tcvae import ESTIMATORS, batch_decomposition, decomposition, tc_vae_loss

# The function the training step differentiates, by name. For the two-player
# FactorVAE it is the sum of its two isolated losses (vae/objectives/factor_vae.py).
OBJECTIVES: dict[str, Callable[..., Any]] = {
    "vae": vae_loss,
    "beta_vae": vae_loss,
    "annealed_vae": annealed_vae_loss,
    "beta_tcvae": tc_vae_loss,
    "factor_vae": factor_vae.factor_vae_train_loss,
    "dip_vae_i": dip_vae_i_loss,
    "dip_vae_ii": dip_vae_ii_loss,
    "iwae": iwae_loss,
    "ae": ae_loss,
    "dae": dae_loss,
}

# Which hyperparameters each objective takes (names of its keyword args).
HPARAMS: dict[str, tuple[str, ...]] = {
    "vae": ("beta",),
    "beta_vae": ("beta",),
    "annealed_vae": ("gamma", "c_max", "iteration_threshold"),
    "beta_tcvae": ("alpha", "beta", "gamma", "dataset_size", "estimator"),
    "factor_vae": ("gamma",),
    "dip_vae_i": ("lambda_od", "lambda_d"),
    "dip_vae_ii": ("lambda_od", "lambda_d"),
    "iwae": ("num_samples",),
    "ae": (),
    "dae": ("corruption", "noise_level"),
}

# Objectives whose encoder is stochastic (a posterior to evaluate by ELBO/IWAE).
PROBABILISTIC = ("vae", "beta_vae", "annealed_vae", "beta_tcvae", "factor_vae",
                 "dip_vae_i", "dip_vae_ii", "iwae")

# Objectives that train extra parameters besides the encoder and decoder:
# name -> (params key, init(key, model)).
EXTRA_PARAMS = {
    "factor_vae": ("discriminator",
                   lambda key, model: factor_vae.init_discriminator(key, model.latent_dim)),
}


def takes_step(loss_fn: Callable[..., Any]) -> bool:
  """Whether an objective reads the training step (AnnealedVAE's capacity)."""
  return "step" in inspect.signature(loss_fn).parameters


def init_extra_params(name: str, key, model) -> dict[str, Any]:
  """{} or the extra parameters an objective trains (FactorVAE's discriminator)."""
  if name not in EXTRA_PARAMS:
    return {}
  field, init = EXTRA_PARAMS[name]
  return {field: init(key, model)}


def validate_hparams(name: str, hparams: Mapping[str, Any]) -> dict[str, Any]:
  """Checks an objective's hyperparameters before anything is traced.

  Args:
    name: objective name (a key of ``OBJECTIVES``).
    hparams: the values given; keys not used by ``name`` are ignored.

  Returns:
    The subset of ``hparams`` that the objective takes.

  Raises:
    ValueError: naming the parameter, what was expected and what came.
  """
  if name not in OBJECTIVES:
    raise ValueError(f"objective must be one of {sorted(OBJECTIVES)}, got {name!r}")
  out = {k: hparams[k] for k in HPARAMS[name] if k in hparams}
  for nonneg in ("beta", "alpha", "gamma", "c_max", "lambda_od", "lambda_d"):
    if nonneg in out and not float(out[nonneg]) >= 0:
      raise ValueError(f"{nonneg} must be >= 0, got {out[nonneg]}")
  if "iteration_threshold" in out:
    t = out["iteration_threshold"]
    if int(t) != t or int(t) < 1:
      raise ValueError(f"iteration_threshold must be an integer >= 1 (steps until "
                       f"the capacity reaches c_max), got {t}")
  if "dataset_size" in out:
    n = out["dataset_size"]
    if n is not None and (int(n) != n or int(n) < 0):
      raise ValueError("dataset_size must be the number of training examples N "
                       f"(an integer >= 1; 0: taken from the data), got {n}")
    out["dataset_size"] = int(n) if n else None
  if "estimator" in out and out["estimator"] not in ESTIMATORS:
    raise ValueError(f"estimator must be one of {ESTIMATORS}, got {out['estimator']!r}")
  if "num_samples" in out:
    k = out["num_samples"]
    if int(k) != k or int(k) < 1:
      raise ValueError(f"num_samples (k) must be an integer >= 1, got {k}")
    out["num_samples"] = int(k)
  if "corruption" in out and out["corruption"] not in CORRUPTIONS:
    raise ValueError(
        f"corruption must be one of {CORRUPTIONS}, got {out['corruption']!r}")
  if "noise_level" in out:
    p = float(out["noise_level"])
    bad = (p < 0 or p >= 1) if out.get("corruption", "masking") == "masking" else p < 0
    if bad:
      raise ValueError("noise_level must be in [0, 1) for masking and >= 0 for "
                       f"gaussian corruption, got {p}")
  return out


def get_objective(name: str, **hparams) -> Callable[..., Any]:
  """Returns ``loss(params, batch, key, *, model)`` with hparams bound."""
  checked = validate_hparams(name, hparams)  # first: unknown names get a clear error
  return functools.partial(OBJECTIVES[name], **checked)


__all__ = ["OBJECTIVES", "HPARAMS", "PROBABILISTIC", "EXTRA_PARAMS", "get_objective",
           "validate_hparams", "takes_step", "init_extra_params", "vae_loss",
           "annealed_vae_loss", "capacity", "tc_vae_loss", "decomposition",
           "batch_decomposition", "factor_vae_loss", "discriminator_loss",
           "dip_vae_loss", "dip_vae_i_loss", "dip_vae_ii_loss", "ae_loss",
           "dae_loss", "iwae_loss", "iwae_bound", "log_importance_weights",
           "batch_elbo_terms"]
