"""Objectives by name: one record per method, collected from its module.

Every objective has the form
``loss(params, batch, key, *, model, **hparams) -> (scalar, aux)``
(docs/design.md, contract 3) and is described by an ``Objective`` record
(``vae/objectives/base.py``) that its module lists in ``OBJECTIVES``. The
registry below is built from every module of this package, so adding a method
is one new module (its loss, its hyperparameter dataclass, its record) plus a
config. ``get_objective(name, **hparams)`` returns the loss with checked
hyperparameters, the paper's defaults filled in.
"""

from __future__ import annotations

from typing import Any

from vae import registry
from vae.objectives import base
from vae.objectives.autoencoders import CORRUPTIONS, ae_loss, dae_loss
from vae.objectives.base import BoundObjective, Objective
from vae.objectives.dip_vae import dip_vae_i_loss, dip_vae_ii_loss, dip_vae_loss
from vae.objectives.elbo import (annealed_vae_loss, batch_elbo_terms, capacity,
                                 family_loss, vae_loss)
from vae.objectives.factor_vae import discriminator_loss, factor_vae_loss
from vae.objectives.iwae import iwae_bound, iwae_loss, log_importance_weights
from vae.objectives.mmd import info_vae_loss, wae_mmd_loss
from vae.objectives.tcvae import ESTIMATORS, batch_decomposition, decomposition, tc_vae_loss


REGISTRY: dict[str, Objective] = registry.collect(__name__, __path__, "OBJECTIVES", "objective")


def get(name: str) -> Objective:
  """The record of objective ``name``.

  Raises:
    ValueError: for an unknown name, listing the known ones.
  """
  return registry.lookup(REGISTRY, name, "objective")


def get_objective(name: str, **hparams) -> BoundObjective:
  """``loss(params, batch, key, *, model)`` of objective ``name`` with
  ``hparams`` checked and the paper's defaults for the rest."""
  return get(name).bind(**hparams)


def default_hparams() -> dict[str, dict[str, Any]]:
  """{objective: {hyperparameter: the paper's value}} for every objective."""
  return {name: record.defaults() for name, record in REGISTRY.items()}


__all__ = ["REGISTRY", "Objective", "BoundObjective", "base", "get", "get_objective",
           "default_hparams", "family_loss", "vae_loss", "annealed_vae_loss", "capacity",
           "tc_vae_loss", "decomposition", "batch_decomposition", "ESTIMATORS",
           "factor_vae_loss", "discriminator_loss", "dip_vae_loss", "dip_vae_i_loss",
           "dip_vae_ii_loss", "ae_loss", "dae_loss", "CORRUPTIONS", "iwae_loss",
           "iwae_bound", "log_importance_weights", "batch_elbo_terms",
           "wae_mmd_loss", "info_vae_loss"]
