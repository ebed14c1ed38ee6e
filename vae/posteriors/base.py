"""What a posterior family is: one record (a frozen dataclass) per family.

Every family is built on the encoder's mean-field Gaussian ``(mean, logvar)``
(``vae.model.encode``): the Gaussian itself (``gaussian.py``, the default),
or that Gaussian pushed through a normalising flow (``planar.py``). A family
is a frozen dataclass whose fields are its hyperparameters (so a ``Model``
holding one stays hashable and static under ``jax.jit``) with:

* ``name``, ``reference``: its registry name and paper;
* ``gaussian``: q(z|x) is the encoder's Gaussian itself (with the standard
  normal prior, the disentangling objectives, whose estimators assume a
  Gaussian q, apply);
* ``has_closed_form_kl``, ``kl_per_dim(mean, logvar)``: the KL to the
  standard prior (N(0, I), and a uniform categorical for discrete latents)
  per latent in closed form; a flow has none, and its KL is estimated by
  Monte Carlo;
* ``has_log_prob``: ``sample`` returns log q(z|x) (what the Monte Carlo KL
  and the importance weights need); a relaxed or quantised code has none;
* ``standard_prior_sample``: draws from the standard prior the closed-form
  KL refers to (prior samples, figures);
* ``code(mean, logvar, params)``: the deterministic code the decoder reads
  for an example (the mean for the Gaussian; reconstructions, traversals);
* ``requires_objective``: the one objective that can train it ("" for any),
  e.g. the VQ-VAE's codebook losses;
* ``init_params(key, latent_dim)``: its own parameters (``params["posterior"]``
  of the model), or None;
* ``sample(key, mean, logvar, params, num_samples)``: reparameterised
  ``z`` and ``log q(z|x)`` at it, for one example (what the Monte Carlo KL,
  the importance weights and every objective need);
* ``evaluation_sample(...)``: the same draw as the model defines it, for the
  evaluated ELBO (``vae.evaluate.dataset_elbo``): ``sample`` itself, except
  for a family that trains through a relaxation of a discrete code, whose
  relaxed sample the model's decoder never reads (JointVAE: the category
  itself, so that the evaluated ELBO is a bound on log p(x)).

A family that cannot give what an objective or a metric needs is refused by
it with a message naming both (``vae.model.require_gaussian``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax

from vae import distributions as dist


@dataclasses.dataclass(frozen=True)
class Posterior:
  """Base of the posterior families (see the module docstring)."""
  name: ClassVar[str] = ""
  reference: ClassVar[str] = ""
  gaussian: ClassVar[bool] = False
  has_closed_form_kl: ClassVar[bool] = False
  has_log_prob: ClassVar[bool] = True
  requires_objective: ClassVar[str] = ""

  def init_params(self, key, latent_dim: int) -> Any:
    """The family's own parameters, or None."""
    del key, latent_dim
    return None

  def kl_per_dim(self, mean, logvar):
    """The closed-form KL to the standard prior per latent [D], or None."""
    del mean, logvar
    return None

  def sample(self, key, mean, logvar, params, num_samples: int | None = None):
    """(z, log q(z|x)) for one example: z [D] and a scalar, or [k, D] and
    [k] with ``num_samples=k``."""
    raise NotImplementedError

  def evaluation_sample(self, key, mean, logvar, params, num_samples: int | None = None):
    """(z, log q(z|x)) as ``sample``, drawn from the code the model defines
    rather than a training relaxation of it (see the module docstring)."""
    return self.sample(key, mean, logvar, params, num_samples)

  def code(self, mean, logvar, params):
    """The deterministic code of one example that the decoder reads for it
    (reconstructions, traversals): the Gaussian's mean, pushed through a
    flow, quantised, or with the categorical part one-hot."""
    del logvar, params
    return mean

  def standard_prior_sample(self, key, num: int, latent_dim: int, params):
    """``num`` draws [num, D] of the family's standard prior: N(0, I) (a
    discrete family replaces its part with uniform draws of its codes)."""
    del params
    return jax.random.normal(key, (int(num), int(latent_dim)))



def gaussian_sample(key, mean, logvar, num_samples: int | None = None):
  """(z, log q(z|x)) drawn from the encoder's Gaussian N(mean, exp(logvar))
  by the reparameterisation trick: z [D] and a scalar, or [k, D] and [k]
  (the Gaussian family, and the base of the flows)."""
  z = dist.reparameterized_sample(key, mean, logvar, num_samples)
  if num_samples is None:
    return z, dist.gaussian_log_prob(z, mean, logvar)
  return z, jax.vmap(lambda zz: dist.gaussian_log_prob(zz, mean, logvar))(z)
