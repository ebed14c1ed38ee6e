"""VAE and beta-VAE objectives (negative ELBO, averaged over the batch).

References:
  Kingma & Welling (2014), Auto-Encoding Variational Bayes, Eq. 3 and Eq. 7.
  Higgins et al. (2017), beta-VAE: Learning Basic Visual Concepts with a
  Constrained Variational Framework, Eq. 4 (beta-weighted KL).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vae import model as model_lib


def batch_elbo_terms(params, batch, key, *, model):
  """``model.elbo_terms`` vmapped over the batch axis, one key per example.

  Args:
    params: model parameters.
    batch: [B, *data_shape].
    key: PRNG key, split into B keys.
    model: the static ``Model``.

  Returns:
    dict of per-example arrays: elbo [B], log_likelihood [B], kl [B],
    kl_per_dim [B, D].
  """
  keys = jax.random.split(key, batch.shape[0])
  return jax.vmap(lambda x, k: model_lib.elbo_terms(params, x, k, model=model))(
      batch, keys)


def vae_loss(params, batch, key, *, model, beta: float = 1.0):
  """Negative (beta-)ELBO averaged over the batch axis.

  ``loss = mean_b[ -E_q log p(x_b|z) + beta * KL(q(z|x_b) || p(z)) ]``
  (Kingma & Welling 2014, Eq. 7 with beta = 1; Higgins et al. 2017, Eq. 4).

  Args:
    params: model parameters.
    batch: [B, *data_shape].
    key: PRNG key.
    model: the static ``Model``.
    beta: weight on the KL term (>= 0).

  Returns:
    (loss scalar, aux) where aux has the batch means of ``elbo`` (the true,
    beta = 1 bound), ``log_likelihood`` (reconstruction term) and ``kl``.
  """
  t = batch_elbo_terms(params, batch, key, model=model)
  ll, kl = jnp.mean(t["log_likelihood"], axis=0), jnp.mean(t["kl"], axis=0)
  loss = -(ll - beta * kl)
  return loss, {"loss": loss, "elbo": ll - kl, "log_likelihood": ll, "kl": kl}
