"""Inverse autoregressive flow (IAF) on top of the Gaussian posterior.

``z_0 = mean + sigma * eps`` (the encoder's Gaussian), then T steps

  [m_t, s_t] = AutoregressiveNN_t(z_{t-1}, h),  sigma_t = sigmoid(s_t),
  z_t = sigma_t * z_{t-1} + (1 - sigma_t) * m_t,

the numerically stable form of Kingma et al. (2016), Eq. 13-14 and
Algorithm 1, with

  log q(z_T|x) = log q_0(z_0|x) - sum_t sum_i log sigma_{t,i}.

Each AutoregressiveNN is a MADE (Germain et al. 2015): one masked hidden layer
(ELU) so that m_{t,i} and s_{t,i} depend on z_{t-1,<i} only, which makes the
Jacobian triangular with diagonal sigma_t. The context ``h`` is the encoder's
statistics ``[mean, logvar]`` (the paper takes an extra encoder output; here
the flow is amortised through the encoder's Gaussian, as ``planar.py`` is),
and the variable order is reversed from one step to the next (their Sec. 5).
The s-bias starts at +1.5 (sigma near 0.82), as the paper advises (+1 or
+2, so that each step starts mostly as its input): a step starts as
``z_t = 0.82 z_{t-1} + 0.18 m_t``, log-determinant about -0.2 nats per
latent.

References:
  Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling (2016), Improved
  Variational Inference with Inverse Autoregressive Flow, NeurIPS: Eq. 10-14,
  Algorithm 1; Table 2 (MNIST).
  Germain, Gregor, Murray & Larochelle (2015), MADE, Sec. 3-4 (masks).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from vae import checks
from vae.posteriors import base

S_BIAS = 1.5


@dataclasses.dataclass(frozen=True)
class IAF(base.Posterior):
  """num_steps: T flow steps; hidden: the MADE's hidden width."""
  num_steps: int = 2
  hidden: int = 320
  name = "iaf"
  reference = "Kingma et al. (2016), Eq. 10-14 and Algorithm 1"

  def __post_init__(self):
    for field in ("num_steps", "hidden"):
      object.__setattr__(self, field, checks.check_int_at_least(
          f"iaf: {field}", getattr(self, field), 1))

  def masks(self, d: int):
    """(input->hidden [T, D, H], hidden->output [T, H, D]) MADE masks: an
    output i sees the inputs before i in step t's order (reversed on odd t)."""
    h = self.hidden
    hidden_deg = np.arange(h) % max(d - 1, 1) + 1
    m_in, m_out = [], []
    for t in range(self.num_steps):
      deg = np.arange(1, d + 1) if t % 2 == 0 else np.arange(d, 0, -1)
      m_in.append(hidden_deg[None, :] >= deg[:, None])
      m_out.append(deg[None, :] > hidden_deg[:, None])
    return (jnp.asarray(np.stack(m_in), jnp.float32), jnp.asarray(np.stack(m_out), jnp.float32))

  def init_params(self, key, latent_dim):
    d, h, t = int(latent_dim), self.hidden, self.num_steps
    k1, k2, k3, k4 = jax.random.split(key, 4)
    glorot = lambda k, shape: (jax.random.normal(k, shape)
                               * np.sqrt(2.0 / (shape[-2] + shape[-1]))).astype(jnp.float32)
    return {"w_in": glorot(k1, (t, d, h)), "w_context": glorot(k2, (t, 2 * d, h)),
            "b_hidden": jnp.zeros((t, h), jnp.float32),
            "w_m": 0.01 * glorot(k3, (t, h, d)), "b_m": jnp.zeros((t, d), jnp.float32),
            "w_s": 0.01 * glorot(k4, (t, h, d)), "b_s": jnp.full((t, d), S_BIAS, jnp.float32)}

  def sample(self, key, mean, logvar, params, num_samples=None):
    z0, log_q0 = base.gaussian_sample(key, mean, logvar, num_samples)
    context = jnp.concatenate([mean, jnp.broadcast_to(logvar, mean.shape)])
    z, log_det = flow(z0, context, params, *self.masks(mean.shape[-1]))
    return z, log_q0 - log_det


  def code(self, mean, logvar, params):
    context = jnp.concatenate([mean, jnp.broadcast_to(logvar, mean.shape)])
    return flow(mean, context, params, *self.masks(mean.shape[-1]))[0]


def flow(z, context, params, mask_in, mask_out):
  """The T IAF steps on ``z`` [..., D]: (z_T, sum_t sum_i log sigma_t) of
  shape [...] (the log-determinant)."""
  def step(z, p):
    w_in, w_c, b_h, w_m, b_m, w_s, b_s, m_in, m_out = p
    hidden = jax.nn.elu(z @ (w_in * m_in) + context @ w_c + b_h)
    m = hidden @ (w_m * m_out) + b_m
    s = hidden @ (w_s * m_out) + b_s
    sigma = jax.nn.sigmoid(s)
    return sigma * z + (1.0 - sigma) * m, jnp.sum(jax.nn.log_sigmoid(s), axis=-1)
  stacked = (params["w_in"], params["w_context"], params["b_hidden"], params["w_m"],
             params["b_m"], params["w_s"], params["b_s"], mask_in, mask_out)
  z, log_dets = jax.lax.scan(step, z, stacked)
  return z, jnp.sum(log_dets, axis=0)


POSTERIORS = (IAF,)
