"""The VQ-VAE's code: the encoder's output quantised to a learned codebook.

The encoder's ``latent_dim`` means are ``num_latents = latent_dim /
code_dim`` vectors ``z_e`` of ``code_dim`` each (its logvar outputs are
unused); each is replaced by its nearest of the ``num_codes`` codebook
vectors ``e_k``, and the decoder gets ``z_e + stop_gradient(e_k - z_e)``: the
straight-through estimator, which passes the decoder's gradient to the
encoder unchanged (van den Oord et al. 2017, Eq. 1-3). q(k|x) is one-hot and
the prior uniform over the codes, so ``KL = num_latents * log(num_codes)``,
a constant (their Sec. 3.1), returned spread evenly over the latents.

The codebook is learned by gradient (the codebook loss of the ``vq_vae``
objective), or with ``ema_decay > 0`` as exponential moving averages of the
counts and sums of the encoder outputs assigned to each code (their App.
A.1); then its parameters are ``ema_counts`` [K] and ``ema_sums`` [K, d], and
the codebook is ``ema_sums / ema_counts`` (Laplace-smoothed counts). The
moving averages are updated by the ``vq_vae`` objective, which this family
needs.

References:
  van den Oord, Vinyals & Kavukcuoglu (2017), Neural Discrete Representation
  Learning, NeurIPS: Eq. 1-3, Sec. 3.1-3.2, App. A.1 (EMA updates).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from vae import checks

from vae.posteriors import base

LAPLACE_EPS = 1e-5


@dataclasses.dataclass(frozen=True)
class VQ(base.Posterior):
  """num_codes: K codebook vectors; code_dim: d, each vector's size
  (latent_dim must be a multiple of it); ema_decay: 0 learns the codebook by
  gradient, else the EMA decay gamma (0.99 in the paper, App. A.1)."""
  num_codes: int = 64
  code_dim: int = 8
  ema_decay: float = 0.99
  name = "vq"
  reference = "van den Oord et al. (2017), Eq. 1-3"
  has_closed_form_kl = True
  has_log_prob = False
  requires_objective = "vq_vae"

  def __post_init__(self):
    for field in ("num_codes", "code_dim"):
      object.__setattr__(self, field, checks.check_int_at_least(
          f"vq: {field}", getattr(self, field), 1))
    if not 0.0 <= float(self.ema_decay) < 1.0:
      raise ValueError(f"vq: ema_decay must be in [0, 1) (0: learn the codebook by "
                       f"gradient), got {self.ema_decay}")

  @property
  def ema(self) -> bool:
    return float(self.ema_decay) > 0

  def num_latents(self, latent_dim: int) -> int:
    if latent_dim % self.code_dim:
      raise ValueError(f"vq: latent_dim ({latent_dim}) must be a multiple of code_dim "
                       f"({self.code_dim})")
    return latent_dim // self.code_dim

  def init_params(self, key, latent_dim):
    self.num_latents(int(latent_dim))
    book = jax.random.uniform(key, (self.num_codes, self.code_dim), jnp.float32,
                              -1.0 / self.num_codes, 1.0 / self.num_codes)
    if not self.ema:
      return {"codebook": book}
    return {"ema_counts": jnp.ones((self.num_codes,), jnp.float32), "ema_sums": book}

  def codebook(self, params):
    """[K, d] codebook vectors (for EMA: sums / Laplace-smoothed counts)."""
    if not self.ema:
      return params["codebook"]
    n = params["ema_counts"]
    total = jnp.sum(n)
    smoothed = (n + LAPLACE_EPS) / (total + self.num_codes * LAPLACE_EPS) * total
    return jax.lax.stop_gradient(params["ema_sums"] / smoothed[:, None])

  def quantize(self, z_e, params):
    """For encoder outputs z_e [..., M * d]: (indices [..., M], z_e as [..., M, d],
    the chosen codebook vectors [..., M, d])."""
    z = z_e.reshape(z_e.shape[:-1] + (-1, self.code_dim))
    book = self.codebook(params)
    dist2 = (jnp.sum(z ** 2, -1, keepdims=True) - 2.0 * z @ book.T
             + jnp.sum(book ** 2, -1))
    idx = jnp.argmin(dist2, axis=-1)
    return idx, z, book[idx]

  def kl_per_dim(self, mean, logvar):
    del logvar
    return jnp.full(mean.shape, math.log(self.num_codes) / self.code_dim, jnp.float32)

  def sample(self, key, mean, logvar, params, num_samples=None):
    del key, logvar                      # deterministic: every sample is the same code
    _, z, e = self.quantize(mean, params)
    z_q = (z + jax.lax.stop_gradient(e - z)).reshape(mean.shape)
    if num_samples is not None:
      z_q = jnp.broadcast_to(z_q, (num_samples,) + z_q.shape)
    return z_q, None

  def code(self, mean, logvar, params):
    del logvar
    return self.quantize(mean, params)[2].reshape(mean.shape)

  def standard_prior_sample(self, key, num, latent_dim, params):
    m = self.num_latents(int(latent_dim))
    idx = jax.random.randint(key, (int(num), m), 0, self.num_codes)
    return self.codebook(params)[idx].reshape(int(num), int(latent_dim))


POSTERIORS = (VQ,)
