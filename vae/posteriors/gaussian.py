"""The mean-field Gaussian posterior q(z|x) = N(mean, diag(exp(logvar))):
the encoder's output itself (diagonal, or isotropic with one shared
variance), sampled by the reparameterisation trick.

References:
  Kingma & Welling (2014), Auto-Encoding Variational Bayes, Eq. 10 (the
  reparameterisation), App. B (the KL to N(0, I) in closed form).
"""

from __future__ import annotations

import dataclasses

from vae import distributions as dist
from vae.posteriors import base


@dataclasses.dataclass(frozen=True)
class Gaussian(base.Posterior):
  """q(z|x) = N(mean, diag(exp(logvar))); no hyperparameters."""
  name = "gaussian"
  reference = "Kingma & Welling (2014), Eq. 10"
  gaussian = True
  has_closed_form_kl = True

  def kl_per_dim(self, mean, logvar):
    return dist.kl_to_standard_normal_per_dim(mean, logvar)

  def sample(self, key, mean, logvar, params, num_samples=None):
    del params
    return base.gaussian_sample(key, mean, logvar, num_samples)


POSTERIORS = (Gaussian,)
