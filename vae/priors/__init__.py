"""Priors p(z) by name: one record class per module.

``make(name, **hparams)`` builds one (``standard_normal``, the default;
``vampprior``; ``two_layer``, a second stochastic layer); ``default_hparams()`` gives every prior's hyperparameters, the
config's ``model.prior_hparams`` section. A new prior is one module listing its
class in ``PRIORS`` (``base.py`` says what it provides).
"""

from __future__ import annotations

from typing import Any

from vae import registry
from vae.priors import base
from vae.priors.base import Prior
from vae.priors.standard_normal import StandardNormal
from vae.priors.two_layer import TwoLayer
from vae.priors.vampprior import VampPrior

REGISTRY: dict[str, type] = registry.collect(__name__, __path__, "PRIORS", "prior")


def make(name: str, **hparams) -> Prior:
  """The prior ``name`` with ``hparams`` (the rest at their defaults).

  Raises:
    ValueError: an unknown prior or hyperparameter (listing the known ones)
      or a bad value.
  """
  return registry.build(REGISTRY, name, "prior", hparams)


def default_hparams() -> dict[str, dict[str, Any]]:
  """{prior: {hyperparameter: default}} for every prior."""
  return registry.dataclass_defaults(REGISTRY)


__all__ = ["REGISTRY", "Prior", "StandardNormal", "TwoLayer", "VampPrior", "base", "make",
           "default_hparams"]
