"""The standard normal prior p(z) = N(0, I) (Kingma & Welling 2014, Sec. 3)."""

from __future__ import annotations

import dataclasses

import jax

from vae import distributions as dist
from vae.priors import base


@dataclasses.dataclass(frozen=True)
class StandardNormal(base.Prior):
  """p(z) = N(0, I); no hyperparameters or parameters."""
  name = "standard_normal"
  reference = "Kingma & Welling (2014), Sec. 3"
  standard_normal = True

  def log_prob_fn(self, params, encode_batch):
    del params, encode_batch
    return dist.standard_normal_log_prob

  def sample(self, key, num, params, encode_batch, latent_dim):
    del params, encode_batch
    return jax.random.normal(key, (int(num), int(latent_dim)))


PRIORS = (StandardNormal,)
