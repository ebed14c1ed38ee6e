"""Plain and denoising autoencoders: the deterministic baselines.

The code is the encoder's mean; the reconstruction loss is the decoder's
negative log-likelihood of the clean input (cross-entropy for Bernoulli,
squared error up to constants for Gaussian).

References:
  Hinton & Salakhutdinov (2006), Reducing the Dimensionality of Data with
  Neural Networks (autoencoder).
  Vincent et al. (2008), Extracting and Composing Robust Features with
  Denoising Autoencoders, Sec. 2.3 (masking noise; the loss is on the clean x).
  Vincent et al. (2010), Stacked Denoising Autoencoders, Sec. 4.2 (additive
  isotropic Gaussian noise).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from vae import model as model_lib
from vae.objectives import base

CORRUPTIONS = ("masking", "gaussian")


def reconstruction_log_likelihood(params, x, *, model):
  """log p(x | z = mean of q(z|x)) for one example (no sampling)."""
  mean, _ = model_lib.encode(params, x, model=model)
  return model_lib.log_likelihood(
      x, model_lib.decode(params, mean, model=model), model=model)


def corrupt(key, x, *, corruption: str, noise_level: float):
  """Corrupts one example.

  Args:
    key: PRNG key.
    x: [*data_shape].
    corruption: "masking" (each entry set to 0 with probability
      ``noise_level``; Vincent et al. 2008) or "gaussian" (x + N(0,
      noise_level^2); Vincent et al. 2010).
    noise_level: masking probability in [0, 1) or the noise std (>= 0).

  Returns:
    The corrupted example, same shape as ``x``.
  """
  if corruption == "masking":
    keep = jax.random.bernoulli(key, 1.0 - noise_level, x.shape)
    return jnp.where(keep, x, jnp.zeros_like(x))
  if corruption == "gaussian":
    return x + noise_level * jax.random.normal(key, x.shape, x.dtype)
  raise ValueError(f"corruption must be one of {CORRUPTIONS}, got {corruption!r}")


def ae_loss(params, batch, key, *, model):
  """Autoencoder loss: mean over the batch of -log p(x | decode(encode(x))).

  Args:
    params: model parameters.
    batch: [B, *data_shape].
    key: unused (the AE is deterministic); kept for the shared signature.
    model: the static ``Model``.

  Returns:
    (loss, aux) with aux ``log_likelihood`` (batch mean) and ``loss``.
  """
  del key
  model_lib.check_batch(batch, model, "ae_loss")
  ll = jnp.mean(jax.vmap(
      lambda x: reconstruction_log_likelihood(params, x, model=model))(batch))
  return -ll, {"loss": -ll, "log_likelihood": ll}


@dataclasses.dataclass(frozen=True)
class DAEHparams:
  """Masking noise with probability 0.25 (Vincent et al. 2008, Sec. 2.3 and
  their 25% destruction level)."""
  corruption: str = "masking"
  noise_level: float = 0.25

  def __post_init__(self):
    base.check_choice("corruption", self.corruption, CORRUPTIONS)
    p = float(self.noise_level)
    bad = (p < 0 or p >= 1) if self.corruption == "masking" else p < 0
    if bad:
      raise ValueError("noise_level must be in [0, 1) for masking and >= 0 for "
                       f"gaussian corruption, got {p}")


def dae_loss(params, batch, key, *, model, corruption: str = DAEHparams.corruption,
             noise_level: float = DAEHparams.noise_level):
  """Denoising autoencoder loss: reconstruct the clean x from a corrupted x.

  ``loss = mean_b[-log p(x_b | decode(encode(corrupt(x_b))))]``
  (Vincent et al. 2008, Sec. 2.3).

  Args:
    params: model parameters.
    batch: [B, *data_shape] clean data.
    key: PRNG key for the corruption, split per example.
    model: the static ``Model``.
    corruption: "masking" or "gaussian".
    noise_level: masking probability or Gaussian noise std.

  Returns:
    (loss, aux) with aux ``log_likelihood`` (of the clean data given the
    corrupted input), ``clean_log_likelihood`` (given the clean input) and
    ``loss``.
  """
  model_lib.check_batch(batch, model, "dae_loss")
  keys = jax.random.split(key, batch.shape[0])

  def one(x, k):
    x_tilde = corrupt(k, x, corruption=corruption, noise_level=noise_level)
    mean, _ = model_lib.encode(params, x_tilde, model=model)
    return model_lib.log_likelihood(
        x, model_lib.decode(params, mean, model=model), model=model)

  ll = jnp.mean(jax.vmap(one)(batch, keys))
  clean = jnp.mean(jax.vmap(
      lambda x: reconstruction_log_likelihood(params, x, model=model))(batch))
  return -ll, {"loss": -ll, "log_likelihood": ll,
               "clean_log_likelihood": jax.lax.stop_gradient(clean)}


OBJECTIVES = (
    base.Objective("ae", ae_loss, base.NoHparams,
                   "Hinton & Salakhutdinov (2006)", probabilistic=False),
    base.Objective("dae", dae_loss, DAEHparams, "Vincent et al. (2008), Sec. 2.3",
                   probabilistic=False),
)
