"""Distributions used by the models, written per example.

Every function takes the parameters of ONE example (event shape only, no batch
axis) and returns a scalar, or an array of event shape for ``*_per_dim``
variants. Batches are handled with ``jax.vmap`` (docs/design.md, contract 1).

Gaussians are parameterised by mean and log-variance, which keeps the variance
positive without a constraint and keeps ``exp`` out of the places where it
would overflow. An *isotropic* Gaussian is the same object with one shared
log-variance: pass a scalar (or size-1) ``logvar`` and it broadcasts.

References:
  Kingma & Welling (2014), Auto-Encoding Variational Bayes, Appendix B
  (closed-form KL of a diagonal Gaussian to N(0, I)).
  Rezende, Mohamed & Wierstra (2014), Stochastic Backpropagation and
  Approximate Inference in Deep Generative Models, Sec. 3 (reparameterisation).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

LOG_2PI = math.log(2.0 * math.pi)


def reparameterized_sample(key: jax.Array, mean: jax.Array, logvar: jax.Array,
                           num_samples: int | None = None) -> jax.Array:
  """Draws z = mean + exp(logvar / 2) * eps with eps ~ N(0, I).

  Gradients flow to ``mean`` and ``logvar`` through the deterministic
  transform of parameter-free noise (Kingma & Welling 2014, Eq. 4 and Sec. 2.4;
  Rezende et al. 2014, Sec. 3).

  Args:
    key: a typed PRNG key.
    mean: [D] posterior mean.
    logvar: [D] log-variances, or a scalar / [1] shared log-variance
      (isotropic posterior).
    num_samples: if given, draws that many samples, stacked on a new axis 0.

  Returns:
    [D] sample, or [num_samples, D] when ``num_samples`` is given.
  """
  shape = mean.shape if num_samples is None else (num_samples,) + mean.shape
  eps = jax.random.normal(key, shape, dtype=mean.dtype)
  return mean + jnp.exp(0.5 * logvar) * eps


def gaussian_log_prob_per_dim(x: jax.Array, mean: jax.Array,
                              logvar: jax.Array) -> jax.Array:
  """Elementwise log N(x; mean, exp(logvar)); broadcasts shared variances."""
  return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * jnp.exp(-logvar))


def gaussian_log_prob(x: jax.Array, mean: jax.Array,
                      logvar: jax.Array) -> jax.Array:
  """log N(x; mean, diag(exp(logvar))), summed over all event dimensions.

  Args:
    x: [...] point (one example).
    mean: same shape as ``x``.
    logvar: same shape as ``x``, or a scalar shared log-variance.

  Returns:
    Scalar log-density.
  """
  per_dim = gaussian_log_prob_per_dim(x, mean, logvar)
  return jnp.sum(jnp.broadcast_to(per_dim, jnp.broadcast_shapes(
      x.shape, mean.shape, jnp.shape(logvar))))


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
  """log N(z; 0, I) summed over the event dimensions."""
  return jnp.sum(-0.5 * (LOG_2PI + z ** 2))


def kl_to_standard_normal_per_dim(mean: jax.Array,
                                  logvar: jax.Array) -> jax.Array:
  """KL(N(mean, exp(logvar)) || N(0, 1)) for each latent dimension.

  Closed form (Kingma & Welling 2014, Appendix B):
  ``0.5 * (exp(logvar) + mean^2 - 1 - logvar)``.

  Args:
    mean: [D].
    logvar: [D], or scalar / [1] for an isotropic posterior.

  Returns:
    [D] non-negative KL per dimension (nats).
  """
  logvar = jnp.broadcast_to(logvar, mean.shape)
  # expm1(lv) - lv is exact near lv = 0, where exp(lv) - 1 - lv cancels badly.
  return 0.5 * (jnp.expm1(logvar) - logvar + mean ** 2)


def kl_to_standard_normal(mean: jax.Array, logvar: jax.Array) -> jax.Array:
  """KL(q || N(0, I)) for a diagonal (or isotropic) Gaussian q; scalar."""
  return jnp.sum(kl_to_standard_normal_per_dim(mean, logvar))


def kl_diagonal_gaussians(mean_q: jax.Array, logvar_q: jax.Array,
                          mean_p: jax.Array, logvar_p: jax.Array) -> jax.Array:
  """KL(q || p) between two diagonal Gaussians, summed over dimensions.

  ``0.5 * sum(logvar_p - logvar_q + (var_q + (mu_q - mu_p)^2) / var_p - 1)``
  (e.g. Kingma & Welling 2014, Appendix B, general form). Not symmetric:
  swapping q and p changes the value unless the variances agree.

  Args:
    mean_q, logvar_q: [D] parameters of q (logvar may be a shared scalar).
    mean_p, logvar_p: [D] parameters of p (logvar may be a shared scalar).

  Returns:
    Scalar KL in nats.
  """
  shape = jnp.broadcast_shapes(mean_q.shape, mean_p.shape)
  diff = logvar_q - logvar_p
  per_dim = 0.5 * (jnp.expm1(diff) - diff
                   + (mean_q - mean_p) ** 2 * jnp.exp(-logvar_p))
  return jnp.sum(jnp.broadcast_to(per_dim, shape))


def kl_monte_carlo(key: jax.Array, sample_q: Callable[[jax.Array], jax.Array],
                   log_q: Callable[[jax.Array], jax.Array],
                   log_p: Callable[[jax.Array], jax.Array],
                   num_samples: int) -> jax.Array:
  """Monte Carlo estimate of KL(q || p) = E_q[log q(z) - log p(z)].

  Works for any pair of densities; for Gaussians it converges to the closed
  forms above (Kingma & Welling 2014, Eq. 6 uses the same estimator inside
  the ELBO). Note the asymmetry: the expectation is under q, the first
  argument.

  Args:
    key: PRNG key.
    sample_q: key -> one sample z ~ q.
    log_q: z -> log q(z) (scalar).
    log_p: z -> log p(z) (scalar).
    num_samples: number of samples averaged.

  Returns:
    Scalar estimate.
  """
  keys = jax.random.split(key, num_samples)
  z = jax.vmap(sample_q)(keys)
  return jnp.mean(jax.vmap(log_q)(z) - jax.vmap(log_p)(z))


def _check_same_shape(fn: str, x, other, other_name: str) -> None:
  if jnp.shape(x) != jnp.shape(other):
    raise ValueError(f"{fn}: x and {other_name} must have the same shape (one "
                     f"example), got {jnp.shape(x)} and {jnp.shape(other)}")


@jax.custom_vjp
def _bernoulli_sum(x, logits):
  """sum(log sigmoid(l) - (1 - x) l), its gradient written by hand.

  Why: XLA:CPU fuses a reduction of this expression into one YNNPACK
  fusion that evaluates the transcendentals slowly; a sum written as a dot
  with ones and the explicit gradient are several times faster, the same
  values to rounding (README, "Why the CPU path looks as it does").
  """
  e = (jax.nn.log_sigmoid(logits) - (1.0 - x) * logits).reshape(-1)
  return jnp.dot(e, jnp.ones_like(e))


def _bernoulli_sum_fwd(x, logits):
  return _bernoulli_sum(x, logits), (x, logits)


def _bernoulli_sum_bwd(res, g):
  x, logits = res
  # d/dl = x - sigmoid(l); d/dx = l.
  return g * logits, g * (x - jax.nn.sigmoid(logits))


_bernoulli_sum.defvjp(_bernoulli_sum_fwd, _bernoulli_sum_bwd)


def gaussian_mixture_log_prob(z: jax.Array, means: jax.Array, logvars: jax.Array) -> jax.Array:
  """log (1/K) sum_k N(z_b; means_k, diag(exp(logvars_k))) for a batch of points.

  The density of an equal-weight mixture of diagonal Gaussians (the
  VampPrior's, Tomczak & Welling 2018, Eq. 9), computed exactly as
  ``gaussian_log_prob`` per point and component, with a log-sum-exp over
  the components.

  Args:
    z: [B, D] points.
    means: [K, D] component means.
    logvars: [K, D] component log-variances, or [K, 1] (one per component).

  Returns:
    [B] log-densities.

  The gradient is written by hand, each of its sums over B or K a
  reduction over the minor axis of the exact differences ``z_b - means_k``:
  autodiff's gradient of the broadcast [B, K, D] form took ~30 ms for
  B = 100, K = 500, D = 50 on a CPU core, 15 times the forward pass (README,
  "Why the CPU path looks as it does"). (Expanding ``(z - m)^2`` into
  matrix products would be faster still, but cancels catastrophically for
  narrow components away from 0.)
  """
  z, means = jnp.asarray(z), jnp.asarray(means)
  if z.ndim != 2 or means.ndim != 2 or z.shape[1] != means.shape[1]:
    raise ValueError(f"gaussian_mixture_log_prob: z must be [B, D] and means [K, D] with the "
                     f"same D, got {z.shape} and {means.shape}")
  logvars = jnp.broadcast_to(logvars, means.shape)
  return _mixture_log_prob(z, means, logvars)


def _mixture_components(z, means, logvars):
  """[B, K] log N(z_b; means_k, exp(logvars_k)), summed over D as
  ``gaussian_log_prob`` sums."""
  inv_var = jnp.exp(-logvars)
  return jax.vmap(lambda zz: jnp.sum(-0.5 * (LOG_2PI + logvars + (zz - means) ** 2 * inv_var),
                                     axis=-1))(z)


@jax.custom_vjp
def _mixture_log_prob(z, means, logvars):
  comp = _mixture_components(z, means, logvars)
  return jax.nn.logsumexp(comp, axis=-1) - math.log(means.shape[0])


def _mixture_log_prob_fwd(z, means, logvars):
  comp = _mixture_components(z, means, logvars)
  out = jax.nn.logsumexp(comp, axis=-1)
  resp = jnp.exp(comp - out[:, None])           # [B, K] responsibilities
  return out - math.log(means.shape[0]), (z, means, logvars, resp)


def _mixture_log_prob_bwd(res, g):
  z, means, logvars, resp = res
  w = resp * g[:, None]                          # [B, K]
  inv_var = jnp.exp(-logvars)                    # [K, D]
  # Each sum runs over the minor axis (XLA:CPU's fast reduction; einsums
  # of the same sums took 36 ms inside the step).
  diff_k = z.T[None, :, :] - means[:, :, None]   # [K, D, B]: z_b - m_k
  w_k = w.T[:, None, :]                          # [K, 1, B]
  # d/dm_k = sum_b w_bk (z_b - m_k) / v_k
  dm = inv_var * jnp.sum(diff_k * w_k, axis=-1)
  # d/dlogvar_k = -1/2 sum_b w_bk (1 - (z_b - m_k)^2 / v_k)
  sq = jnp.sum(diff_k * diff_k * w_k, axis=-1)
  dlv = -0.5 * (jnp.sum(w, axis=0)[:, None] - inv_var * sq)
  # d/dz_b = -sum_k w_bk (z_b - m_k) / v_k
  diff_b = z[:, :, None] - means.T[None]         # [B, D, K]
  dz = -jnp.sum(diff_b * (inv_var.T[None] * w[:, None, :]), axis=-1)
  return dz, dm, dlv


_mixture_log_prob.defvjp(_mixture_log_prob_fwd, _mixture_log_prob_bwd)


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
  """log Bernoulli(x; sigmoid(logits)) summed over all event dimensions.

  ``x log sigmoid(l) + (1 - x) log sigmoid(-l)`` rewritten with
  ``log sigmoid(-l) = log sigmoid(l) - l`` as ``log sigmoid(l) - (1 - x) l``:
  finite for any finite logit (no log(0)), and one transcendental per pixel
  instead of two (this term dominates the cost of k = 5000 evaluation).

  What it accepts: ``x`` in [0, 1], of the shape of ``logits``. For binary
  ``x`` (0 or 1) it is the log-probability of a Bernoulli; for ``x`` strictly
  between it is the negative binary cross-entropy, which is not a normalised
  likelihood. Values outside [0, 1] (e.g. 0-255 pixels) have no meaning
  here and would give a positive "log-probability": a concrete ``x`` raises
  ValueError, and under a trace (jit, vmap, grad) the result is NaN, so such
  data cannot pass unnoticed.

  Args:
    x: [...] data of one example, values in [0, 1].
    logits: same shape as ``x``.

  Returns:
    Scalar log-likelihood (NaN if ``x`` leaves [0, 1] under a trace).

  Raises:
    ValueError: shapes differ, or a concrete ``x`` has values outside [0, 1].
  """
  _check_same_shape("bernoulli_log_prob", x, logits, "logits")
  ll = _bernoulli_sum(jnp.asarray(x).astype(logits.dtype), logits)
  if isinstance(x, jax.core.Tracer):
    return jnp.where(jnp.all((x >= 0) & (x <= 1)), ll, jnp.nan)
  xa = np.asarray(x)
  if not ((xa >= 0) & (xa <= 1)).all():
    raise ValueError(
        "bernoulli_log_prob: x must lie in [0, 1] (binary data, or [0, 1] "
        f"targets), got values in [{xa.min()}, {xa.max()}]; scale 0-255 images "
        "by 1/255 and binarize, or use a Gaussian likelihood")
  return ll


def cross_entropy_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
  """Negative binary cross-entropy of [0, 1] targets, summed over the event.

  ``sum x log sigmoid(l) + (1 - x) log sigmoid(-l)``: the "Bernoulli" loss
  that disentanglement_lib applies to every data set, grey and colour
  images included (Locatello et al. 2019, ``bernoulli_loss`` in
  ``methods/shared/losses.py``, without subtracting the targets' entropy).
  For binary ``x`` it equals ``bernoulli_log_prob``. For ``x`` strictly
  inside (0, 1) it is NOT a normalised likelihood (no density over [0, 1]
  has this form; its maximum over logits is the entropy of ``x``, below 0),
  so an ELBO computed with it is a training objective, not a bound on a
  log-likelihood: compare such ELBOs with each other, not with published
  log-likelihoods.

  Args:
    x: [...] targets of one example, values in [0, 1].
    logits: same shape as ``x``.

  Returns:
    Scalar (NaN if ``x`` leaves [0, 1] under a trace, as ``bernoulli_log_prob``).

  Raises:
    ValueError: shapes differ, or a concrete ``x`` has values outside [0, 1].
  """
  return bernoulli_log_prob(x, logits)


def gaussian_likelihood_log_prob(x: jax.Array, mean: jax.Array,
                                 logvar: jax.Array | float = 0.0) -> jax.Array:
  """Gaussian decoder log-likelihood log N(x; mean, exp(logvar) I), summed.

  A normalised density over the reals, so its ELBO is a bound on a
  (continuous) log-density; with a fixed ``logvar`` it is the squared error
  scaled by ``exp(-logvar) / 2`` plus a constant (Kingma & Welling 2014,
  Appendix C.2).

  Args:
    x: [...] data of one example.
    mean: same shape as ``x``, the decoder output.
    logvar: observation log-variance: a scalar (fixed or one learned value)
      or an array of ``x``'s shape (learned per pixel).

  Returns:
    Scalar log-likelihood.

  Raises:
    ValueError: ``x`` and ``mean`` differ in shape (one would broadcast).
  """
  _check_same_shape("gaussian_likelihood_log_prob", x, mean, "mean")
  return gaussian_log_prob(x, mean, jnp.asarray(logvar, mean.dtype))


# "bernoulli": binary data; "cross_entropy": [0, 1] targets (not normalised);
# "gaussian": any real values.
LIKELIHOODS = ("bernoulli", "cross_entropy", "gaussian")
# Gaussian observation variance: a fixed value, or learned (one value shared
# by every pixel, or one per pixel of the data shape).
OBS_VARIANCES = ("fixed", "shared", "per_pixel")


def log_likelihood(name: str, x: jax.Array, decoder_out: jax.Array,
                   obs_logvar: float = 0.0, learned_variance: bool = False) -> jax.Array:
  """Dispatches to the decoder likelihood named ``name`` (static).

  Args:
    name: one of ``LIKELIHOODS``.
    x: [*data_shape] one example.
    decoder_out: [*data_shape] logits or means; for a Gaussian with a
      learned variance (``learned_variance``), [*data_shape, 2]: the mean and
      the log-variance stacked on a new last axis.
    obs_logvar: the fixed observation log-variance (Gaussian, not learned).
    learned_variance: see ``decoder_out``.
  """
  if name in ("bernoulli", "cross_entropy"):
    return bernoulli_log_prob(x, decoder_out)
  if name == "gaussian":
    if learned_variance:
      return gaussian_likelihood_log_prob(x, decoder_out[..., 0], decoder_out[..., 1])
    return gaussian_likelihood_log_prob(x, decoder_out, obs_logvar)
  raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {name!r}")


def mean_of_likelihood(name: str, decoder_out: jax.Array,
                       learned_variance: bool = False) -> jax.Array:
  """The mean of p(x|z): sigmoid(logits) for Bernoulli and cross-entropy,
  the mean for Gaussian (``decoder_out[..., 0]`` with a learned variance)."""
  if name in ("bernoulli", "cross_entropy"):
    return jax.nn.sigmoid(decoder_out)
  if name == "gaussian":
    return decoder_out[..., 0] if learned_variance else decoder_out
  raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {name!r}")
