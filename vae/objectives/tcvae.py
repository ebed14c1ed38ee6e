"""beta-TCVAE: the ELBO's KL split into index-code mutual information, total
correlation and dimension-wise KL, with minibatch estimators of log q(z).

For x ~ p(x) (the data set of size N) and z ~ q(z|x):

  E_x KL(q(z|x) || p(z)) = I_q(x; z)                       (index-code MI)
                           + KL(q(z) || prod_d q(z_d))      (total correlation)
                           + sum_d KL(q(z_d) || p(z_d))     (dimension-wise KL)

(Chen et al. 2018, Eq. 2). The aggregate posterior q(z) = 1/N sum_n q(z|n) is
estimated from the minibatch {n_1..n_M} by

* minibatch weighted sampling (MWS, Chen et al. 2018, Eq. 5 / Appendix C.1):
  ``log q(z_i) ~ log sum_j q(z_i|n_j) - log(N M)``;
* minibatch stratified sampling (MSS, Appendix C.2): ``log q(z_i) ~
  log sum_j w_ij q(z_i|n_j)`` with w_ii = 1/N, one stratum weight
  w_i,(i+1 mod M) = (N - M + 1) / (N (M - 1)) and 1/(M - 1) elsewhere; each
  row of weights sums to 1.

The marginals q(z_d) use the same weights per dimension. The constants
(log N M, the weights) are kept: dropping them, as some implementations do,
shifts the TC by (D - 1) log(N M) and makes it negative. The reference code of
Chen et al. also puts the last row's stratum weight on the wrong row; here
every row gets exactly one.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from vae import distributions as dist
from vae import model as model_lib
from vae.objectives import base
from vae.objectives.elbo import batch_elbo_terms, family_loss

ESTIMATORS = ("mws", "mss")


def log_q_pairwise(z, mean, logvar):
  """log q(z_{i,d} | x_j) for every pair (i, j) and dimension d.

  Args:
    z: [M, D] samples, z_i ~ q(z|x_i).
    mean, logvar: [M, D] posterior parameters of the same batch.

  Returns:
    [M, M, D] array, entry [i, j, d].
  """
  return dist.gaussian_log_prob_per_dim(z[:, None, :], mean[None, :, :],
                                        logvar[None, :, :])


def mss_log_weights(batch_size: int, dataset_size) -> jax.Array:
  """log w_ij of minibatch stratified sampling (Chen et al. 2018, App. C.2).

  Args:
    batch_size: M >= 2.
    dataset_size: N >= M (a Python number or a traced scalar).

  Returns:
    [M, M] log-weights; each row's weights sum to 1.
  """
  m = int(batch_size)
  if m < 2:
    raise ValueError(f"minibatch stratified sampling needs a batch of at least 2, got {m}")
  n = jnp.asarray(dataset_size, jnp.float32)
  other = 1.0 / (m - 1)
  strat = (n - m + 1) / (n * (m - 1))
  eye = jnp.eye(m, dtype=bool)
  nxt = jnp.roll(eye, 1, axis=1)        # (i, i+1 mod M)
  w = jnp.where(eye, 1.0 / n, jnp.where(nxt, strat, other))
  return jnp.log(w)


def log_q_estimates(z, mean, logvar, dataset_size, estimator: str = "mss"):
  """Minibatch estimates of log q(z_i) and log q(z_{i,d}) for each sample.

  Args:
    z, mean, logvar: [M, D].
    dataset_size: N, the number of training examples (explicit: the
      estimators' constants depend on it).
    estimator: "mws" or "mss".

  Returns:
    (log_qz [M], log_qz_marginals [M, D]).
  """
  if estimator not in ESTIMATORS:
    raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
  if dataset_size is None:
    raise ValueError("dataset_size (N, the number of training examples) must be "
                     "given: the estimators of log q(z) depend on it")
  pair = log_q_pairwise(z, mean, logvar)                 # [M, M, D]
  m = z.shape[0]
  if estimator == "mws":
    log_w = -jnp.log(jnp.asarray(dataset_size, jnp.float32) * m)
    log_w = jnp.full((m, m), log_w)
  else:
    log_w = mss_log_weights(m, dataset_size)
  log_qz = jax.nn.logsumexp(log_w + jnp.sum(pair, axis=-1), axis=1)
  log_qz_marg = jax.nn.logsumexp(log_w[:, :, None] + pair, axis=1)
  return log_qz, log_qz_marg


def decomposition(z, mean, logvar, dataset_size, estimator: str = "mss"):
  """The three terms of the KL decomposition (Chen et al. 2018, Eq. 2),
  estimated on one minibatch.

  Args:
    z, mean, logvar: [M, D] samples and posterior parameters.
    dataset_size: N.
    estimator: "mws" or "mss".

  Returns:
    dict of batch means: ``mutual_info`` E[log q(z|x) - log q(z)],
    ``total_correlation`` E[log q(z) - sum_d log q(z_d)], ``dim_kl``
    E[sum_d log q(z_d) - log p(z)], and ``kl_mc`` (their sum, the Monte Carlo
    E[log q(z|x) - log p(z)]).
  """
  log_qz, log_qz_marg = log_q_estimates(z, mean, logvar, dataset_size, estimator)
  log_qzx = jnp.sum(dist.gaussian_log_prob_per_dim(z, mean, logvar), axis=-1)
  log_pz = jax.vmap(dist.standard_normal_log_prob)(z)
  sum_marg = jnp.sum(log_qz_marg, axis=-1)
  return {"mutual_info": jnp.mean(log_qzx - log_qz),
          "total_correlation": jnp.mean(log_qz - sum_marg),
          "dim_kl": jnp.mean(sum_marg - log_pz),
          "kl_mc": jnp.mean(log_qzx - log_pz)}


@dataclasses.dataclass(frozen=True)
class TCVAEHparams:
  """Chen et al. (2018): alpha = gamma = 1 and beta = 6, their dSprites
  setting (Sec. 6); the MSS estimator (App. C.2). ``dataset_size`` N: 0
  means "the training set's size", filled in from the data."""
  alpha: float = 1.0
  beta: float = 6.0
  gamma: float = 1.0
  dataset_size: int = 0
  estimator: str = "mss"

  def __post_init__(self):
    for name in ("alpha", "beta", "gamma"):
      base.check_nonnegative(name, getattr(self, name))
    base.set_field(self, "dataset_size", base.check_int_at_least(
        "dataset_size", self.dataset_size, 0,
        " (the number of training examples N; 0: from the data)"))
    base.check_choice("estimator", self.estimator, ESTIMATORS)


def tc_vae_loss(params, batch, key, *, model, alpha: float = TCVAEHparams.alpha,
                beta: float = TCVAEHparams.beta, gamma: float = TCVAEHparams.gamma,
                dataset_size=None,
                estimator: str = TCVAEHparams.estimator):
  """beta-TCVAE: ``-E log p(x|z) + alpha I + beta TC + gamma dimKL``
  (Chen et al. 2018, Eq. 4).

  Written as the closed-form ELBO plus the differences,
  ``-ELBO + (alpha-1) I + (beta-1) TC + (gamma-1) dimKL``, which has the same
  expectation (I + TC + dimKL is an estimate of the mean KL) and lower
  variance, and which is exactly the negative ELBO at alpha = beta = gamma = 1;
  with alpha = gamma = 1 it is disentanglement_lib's beta-TCVAE.

  Args:
    params, batch, key, model: as ``vae_loss``; the batch must have at least
      2 examples for MSS.
    alpha, beta, gamma: weights on MI, TC and dimension-wise KL.
    dataset_size: N, the training-set size (``experiments.job`` fills it in
      from the data when the config leaves it 0; required otherwise).
    estimator: "mss" (default, lower bias) or "mws".

  Returns:
    (loss, aux): aux as ``vae_loss`` plus the three terms and ``kl_mc``.
  """
  def regularizer(t, ll, kl):
    d = decomposition(t["z"], t["mean"], t["logvar"], dataset_size, estimator)
    return kl, ((alpha - 1.0) * d["mutual_info"] + (beta - 1.0) * d["total_correlation"]
                + (gamma - 1.0) * d["dim_kl"]), d
  return family_loss(params, batch, key, model=model, regularizer=regularizer)


def batch_decomposition(params, batch, key, *, model, dataset_size,
                        estimator: str = "mss"):
  """``decomposition`` for any VAE-family model with the Gaussian posterior
  and the N(0, I) prior on one batch (a diagnostic)."""
  model_lib.require_gaussian(model, "the KL decomposition (Chen et al. 2018, Eq. 2)")
  t = batch_elbo_terms(params, batch, key, model=model)
  return decomposition(t["z"], t["mean"], t["logvar"], dataset_size, estimator)


def _tc_vae_loss(params, batch, key, *, model, dataset_size=0, **hparams):
  # The record's hyperparameters use 0 for "unknown N".
  return tc_vae_loss(params, batch, key, model=model, dataset_size=dataset_size or None,
                     **hparams)


OBJECTIVES = (base.Objective("beta_tcvae", _tc_vae_loss, TCVAEHparams,
                             "Chen et al. (2018), Eq. 4 and App. C", gaussian_only=True),)

__all__ = ["ESTIMATORS", "log_q_pairwise", "mss_log_weights", "log_q_estimates",
           "decomposition", "tc_vae_loss", "batch_decomposition"]
