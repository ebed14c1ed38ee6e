"""Planar normalising flows on top of the Gaussian posterior.

``z_K = f_K(...f_1(z_0))``, ``z_0 ~ N(mean, diag(exp(logvar)))`` (the
encoder's Gaussian), each ``f(z) = z + u_hat h(w^T z + b)`` with
``h = tanh`` (Rezende & Mohamed 2015, Eq. 10), and

  log q_K(z_K|x) = log q_0(z_0|x) - sum_k log |1 + u_hat_k^T psi_k(z_{k-1})|,
  psi(z) = h'(w^T z + b) w                               (their Eq. 11-13).

``u_hat = u + (m(w^T u) - w^T u) w / |w|^2`` with ``m(a) = -1 + softplus(a)``
keeps each ``f`` invertible (their App. A.1). The flow parameters are
amortised, as in the paper: a linear map of the encoder's statistics
``[mean, logvar]`` (initialised to zero, so training starts from a flow shared
by every x, the learned bias) gives each example its own ``u, w, b``. With
no closed-form KL the ELBO uses the one-sample estimate
``log q_K(z_K|x) - log p(z_K)`` (their Eq. 15).

References:
  Rezende & Mohamed (2015), Variational Inference with Normalizing Flows,
  Eq. 10-13 (the flow and its log-determinant), Eq. 15 (the free energy),
  App. A.1 (the invertibility condition).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from vae import checks
from vae.posteriors import base


@dataclasses.dataclass(frozen=True)
class Planar(base.Posterior):
  """num_flows: K, the flow's length (Rezende & Mohamed 2015 report
  K in {2, 10, 20, 40, 80} on binarized MNIST, Fig. 4); amortized: the flow
  parameters depend on x (else one flow for every x)."""
  num_flows: int = 10
  amortized: bool = True
  name = "planar"
  reference = "Rezende & Mohamed (2015), Eq. 10-13"

  def __post_init__(self):
    object.__setattr__(self, "num_flows",
                       checks.check_int_at_least("planar: num_flows", self.num_flows, 1))
    object.__setattr__(self, "amortized", bool(self.amortized))

  def _size(self, d: int) -> int:
    return self.num_flows * (2 * d + 1)

  def init_params(self, key, latent_dim):
    d = int(latent_dim)
    ku, kw = jax.random.split(key)
    bias = jnp.concatenate([
        0.01 * jax.random.normal(ku, (self.num_flows * d,)),          # u
        0.1 * jax.random.normal(kw, (self.num_flows * d,)),           # w
        jnp.zeros((self.num_flows,))])                                # b
    params = {"bias": bias.astype(jnp.float32)}
    if self.amortized:
      params["kernel"] = jnp.zeros((2 * d, self._size(d)), jnp.float32)
    return params

  def flow_parameters(self, mean, logvar, params):
    """(u_hat [K, D], w [K, D], b [K]) for one example."""
    d = mean.shape[-1]
    theta = params["bias"]
    if self.amortized:
      context = jnp.concatenate([mean, jnp.broadcast_to(logvar, mean.shape)])
      theta = theta + context @ params["kernel"]
    k = self.num_flows
    u = theta[:k * d].reshape(k, d)
    w = theta[k * d:2 * k * d].reshape(k, d)
    b = theta[2 * k * d:]
    wu = jnp.sum(w * u, axis=-1, keepdims=True)
    u_hat = u + (jax.nn.softplus(wu) - 1.0 - wu) * w / (jnp.sum(w * w, -1, keepdims=True)
                                                         + 1e-12)
    return u_hat, w, b

  def sample(self, key, mean, logvar, params, num_samples=None):
    z0, log_q0 = base.gaussian_sample(key, mean, logvar, num_samples)
    z, log_det = flow(z0, *self.flow_parameters(mean, logvar, params))
    return z, log_q0 - log_det


  def code(self, mean, logvar, params):
    return flow(mean, *self.flow_parameters(mean, logvar, params))[0]


def flow(z, u_hat, w, b):
  """Applies the planar maps in order to ``z`` [..., D]: (z_K, sum_k
  log|det df_k/dz|) with the sum of shape [...]."""
  def one(z, p):
    u_k, w_k, b_k = p
    h = jnp.tanh(z @ w_k + b_k)                          # [...]
    z_new = z + h[..., None] * u_k
    psi_u = (1.0 - h ** 2) * jnp.dot(w_k, u_k)           # psi(z)^T u_hat
    return z_new, jnp.log(jnp.abs(1.0 + psi_u))
  z, log_dets = jax.lax.scan(one, z, (u_hat, w, b))
  return z, jnp.sum(log_dets, axis=0)


POSTERIORS = (Planar,)
