"""Objectives by name: ``get_objective(name)`` and hyperparameter checks.

Every objective has the form
``loss(params, batch, key, *, model, **hparams) -> (scalar, aux)``
(DESIGN.md, contract 3).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

from vae.objectives.autoencoders import CORRUPTIONS, ae_loss, dae_loss
from vae.objectives.elbo import batch_elbo_terms, vae_loss
from vae.objectives.iwae import iwae_bound, iwae_loss, log_importance_weights

OBJECTIVES: dict[str, Callable[..., Any]] = {
    "vae": vae_loss,
    "beta_vae": vae_loss,
    "iwae": iwae_loss,
    "ae": ae_loss,
    "dae": dae_loss,
}

# Which hyperparameters each objective takes (names of its keyword args).
HPARAMS: dict[str, tuple[str, ...]] = {
    "vae": ("beta",),
    "beta_vae": ("beta",),
    "iwae": ("num_samples",),
    "ae": (),
    "dae": ("corruption", "noise_level"),
}

# Objectives whose encoder is stochastic (a posterior to evaluate by ELBO/IWAE).
PROBABILISTIC = ("vae", "beta_vae", "iwae")


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
  if "beta" in out and not float(out["beta"]) >= 0:
    raise ValueError(f"beta must be >= 0, got {out['beta']}")
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


__all__ = ["OBJECTIVES", "HPARAMS", "PROBABILISTIC", "get_objective",
           "validate_hparams", "vae_loss", "ae_loss", "dae_loss", "iwae_loss",
           "iwae_bound", "log_importance_weights", "batch_elbo_terms"]
