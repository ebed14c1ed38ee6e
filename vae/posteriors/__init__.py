"""Posterior families q(z|x) by name: one record class per module.

``make(name, **hparams)`` builds one (``gaussian``, the default; the flows
``planar`` and ``iaf`` on it; JointVAE's ``joint`` code; the VQ-VAE's ``vq``
code); ``default_hparams()`` gives every family's hyperparameters with the
paper's values, the config's ``model.posterior_hparams`` section. A new family is one module listing its
class in ``POSTERIORS`` (``base.py`` says what it provides).
"""

from __future__ import annotations

from typing import Any

from vae import registry
from vae.posteriors import base
from vae.posteriors.base import Posterior
from vae.posteriors.gaussian import Gaussian
from vae.posteriors.iaf import IAF
from vae.posteriors.joint import Joint
from vae.posteriors.planar import Planar
from vae.posteriors.vq import VQ

REGISTRY: dict[str, type] = registry.collect(__name__, __path__, "POSTERIORS",
                                             "posterior family")


def make(name: str, **hparams) -> Posterior:
  """The family ``name`` with ``hparams`` (the rest at their defaults).

  Raises:
    ValueError: an unknown family or hyperparameter (listing the known ones)
      or a bad value.
  """
  return registry.build(REGISTRY, name, "posterior family", hparams)



def default_hparams() -> dict[str, dict[str, Any]]:
  """{family: {hyperparameter: default}} for every family."""
  return registry.dataclass_defaults(REGISTRY)


__all__ = ["REGISTRY", "Posterior", "Gaussian", "IAF", "Joint", "Planar", "VQ", "base", "make",
           "default_hparams"]
