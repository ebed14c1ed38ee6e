"""Importance-weighted autoencoder bound.

``L_k(x) = E[log (1/k) sum_j p(x, z_j) / q(z_j | x)]``, z_j ~ q(z|x) i.i.d.
(Burda, Grosse & Salakhutdinov 2016, Eq. 8). L_1 is the ELBO, L_k grows with
k (their Theorem 1) and tends to log p(x).

References:
  Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders,
  Eq. 8 (bound), Eq. 14 (its reparameterised gradient).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from vae import conditioning as cond_lib
from vae import distributions as dist
from vae import model as model_lib
from vae.objectives import base


def _log_weights_and_terms(params, x, key, model, num_samples, log_prior=None, y=None):
  """(log w [k], log p(x|z_j) [k], KL(q(z|x) || p(z))) for one x (with a
  conditional model's label y): the KL in closed form for the Gaussian
  posterior and N(0, I) prior, else the mean of log q(z_j|x) - log p(z_j)
  over the k samples."""
  lw, ll, log_ratio = model_lib.log_importance_weights(params, x, key, num_samples,
                                                       model=model, log_prior=log_prior, y=y)
  if model.gaussian:
    mean, logvar = model_lib.encode(params, x, model=model, y=y)
    return lw, ll, jnp.sum(dist.kl_to_standard_normal_per_dim(mean, logvar))
  return lw, ll, jnp.mean(log_ratio)


def log_importance_weights(params, x, key, *, model, num_samples: int):
  """log w_j = log p(x|z_j) + log p(z_j) - log q(z_j|x), j = 1..k.

  Args:
    params: model parameters.
    x: [*data_shape] one example.
    key: PRNG key for the k posterior samples.
    model: the static ``Model``.
    num_samples: k.

  Returns:
    [k] log importance weights.
  """
  return _log_weights_and_terms(params, x, key, model, num_samples)[0]


def iwae_bound(params, x, key, *, model, num_samples: int):
  """One-example estimate of L_k (Burda et al. 2016, Eq. 8); scalar, nats."""
  lw = log_importance_weights(params, x, key, model=model,
                              num_samples=num_samples)
  return jax.nn.logsumexp(lw) - math.log(num_samples)


@dataclasses.dataclass(frozen=True)
class IWAEHparams:
  """k = 5: Burda et al. (2016) train with k in {1, 5, 50} (Table 1)."""
  num_samples: int = 5

  def __post_init__(self):
    base.set_field(self, "num_samples", base.check_int_at_least("num_samples (k)",
                                                                self.num_samples, 1))


def iwae_loss(params, batch, key, *, model, num_samples: int = IWAEHparams.num_samples):
  """Negative IWAE bound averaged over the batch (Burda et al. 2016, Eq. 8).

  Its gradient is the importance-weighted average of the per-sample ELBO
  gradients (their Eq. 14), obtained here by automatic differentiation.

  Args:
    params: model parameters.
    batch: [B, *data_shape]; a conditional model's ``Labeled(x, y)`` (the
      bound on log p(x|y)).
    key: PRNG key, split per example.
    model: the static ``Model``.
    num_samples: k >= 1 importance samples per example.

  Returns:
    (loss, aux) with aux ``iwae_bound``, and for comparison with the VAE the
    ELBO terms from the same k samples (no second pass): ``log_likelihood``
    (E_q log p(x|z), the mean over the k samples), ``kl`` (closed form) and
    ``elbo`` (their difference).
  """
  batch, labels = cond_lib.split_batch(batch, model, "iwae_loss")
  model_lib.check_batch(batch, model, "iwae_loss")
  keys = jax.random.split(key, batch.shape[0])

  # The prior's per-parameter work once per batch (the Gaussian/N(0, I) path
  # keeps its own program: log_prior None).
  log_prior = None if model.gaussian else model_lib.prior_log_prob_batch(params, model=model)

  def one(x, k, y=None):
    lw, ll, kl = _log_weights_and_terms(params, x, k, model, num_samples, log_prior, y)
    return jax.nn.logsumexp(lw) - math.log(num_samples), jnp.mean(ll), kl

  bounds, lls, kls = jax.vmap(one)(batch, keys, labels)   # (labels None: no leaves)
  bound, ll, kl = jnp.mean(bounds), jnp.mean(lls), jnp.mean(kls)
  aux = {"loss": -bound, "iwae_bound": bound,
         "elbo": jax.lax.stop_gradient(ll - kl),
         "log_likelihood": jax.lax.stop_gradient(ll),
         "kl": jax.lax.stop_gradient(kl)}
  return -bound, aux


OBJECTIVES = (base.Objective("iwae", iwae_loss, IWAEHparams,
                             "Burda et al. (2016), Eq. 8 and 14", conditional=True),)
