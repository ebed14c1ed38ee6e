"""Importance-weighted autoencoder bound.

``L_k(x) = E[log (1/k) sum_j p(x, z_j) / q(z_j | x)]``, z_j ~ q(z|x) i.i.d.
(Burda, Grosse & Salakhutdinov 2016, Eq. 8). L_1 is the ELBO, L_k grows with
k (their Theorem 1) and tends to log p(x).

References:
  Burda, Grosse & Salakhutdinov (2016), Importance Weighted Autoencoders,
  Eq. 8 (bound), Eq. 14 (its reparameterised gradient).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from vae import distributions as dist
from vae import model as model_lib


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
  mean, logvar = model_lib.encode(params, x, model=model)
  z = model_lib.reparameterize(key, mean, logvar, num_samples)      # [k, D]
  out = model_lib.decode(params, z, model=model)                    # [k, ...]
  ll = jax.vmap(lambda o: model_lib.log_likelihood(x, o, model=model))(out)
  log_pz = jax.vmap(dist.standard_normal_log_prob)(z)
  log_qz = jax.vmap(lambda zz: dist.gaussian_log_prob(zz, mean, logvar))(z)
  return ll + log_pz - log_qz


def iwae_bound(params, x, key, *, model, num_samples: int):
  """One-example estimate of L_k (Burda et al. 2016, Eq. 8); scalar, nats."""
  lw = log_importance_weights(params, x, key, model=model,
                              num_samples=num_samples)
  return jax.nn.logsumexp(lw) - math.log(num_samples)


def iwae_loss(params, batch, key, *, model, num_samples: int = 5):
  """Negative IWAE bound averaged over the batch (Burda et al. 2016, Eq. 8).

  Its gradient is the importance-weighted average of the per-sample ELBO
  gradients (their Eq. 14), obtained here by automatic differentiation.

  Args:
    params: model parameters.
    batch: [B, *data_shape].
    key: PRNG key, split per example.
    model: the static ``Model``.
    num_samples: k >= 1 importance samples per example.

  Returns:
    (loss, aux) with aux ``iwae_bound``, and the single-sample ``elbo``,
    ``log_likelihood`` and ``kl`` terms for comparison with the VAE.
  """
  keys = jax.random.split(key, batch.shape[0])
  bound = jnp.mean(jax.vmap(lambda x, k: iwae_bound(
      params, x, k, model=model, num_samples=num_samples))(batch, keys))
  t = jax.vmap(lambda x, k: model_lib.elbo_terms(params, x, k, model=model))(
      batch, keys)
  ll, kl = jnp.mean(t["log_likelihood"]), jnp.mean(t["kl"])
  aux = {"loss": -bound, "iwae_bound": bound,
         "elbo": jax.lax.stop_gradient(ll - kl),
         "log_likelihood": jax.lax.stop_gradient(ll),
         "kl": jax.lax.stop_gradient(kl)}
  return -bound, aux
