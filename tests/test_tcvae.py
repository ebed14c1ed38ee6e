"""beta-TCVAE: the KL decomposition and its two estimators of log q(z)."""

from itertools import product

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import objectives
from vae.objectives import tcvae


def _codes(kind, n_batch, seed, K=8, D=3, sigma=0.1):
  """Posterior parameters and samples for a batch drawn from a data set of
  N = K^D combinations of D discrete factors (K values each). "factorised":
  dimension d encodes factor d; "correlated": every dimension encodes factor 0."""
  levels = np.linspace(-2, 2, K)
  grid = np.array(list(product(range(K), repeat=D)))
  idx = np.random.default_rng(seed).choice(len(grid), n_batch, replace=False)
  f = grid[idx]
  mean = levels[f] if kind == "factorised" else np.repeat(levels[f[:, :1]], D, axis=1)
  mean = jnp.asarray(mean, jnp.float32)
  logvar = jnp.full_like(mean, 2 * np.log(sigma))
  z = mean + sigma * jax.random.normal(jax.random.key(seed), mean.shape)
  return z, mean, logvar, len(grid)


def test_mss_weights_rows_sum_to_one_with_one_stratum_each():
  logw = tcvae.mss_log_weights(6, 1000)
  w = np.exp(np.asarray(logw, np.float64))
  np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(np.diag(w), 1 / 1000, rtol=1e-5)
  strat = (1000 - 6 + 1) / (1000 * 5)
  # Exactly one stratum weight in every row, the last row included (the
  # reference implementation misses it there).
  np.testing.assert_array_equal(np.sum(np.isclose(w, strat, rtol=1e-5), axis=1), 1)
  with pytest.raises(ValueError, match="at least 2"):
    tcvae.mss_log_weights(1, 10)


def test_mss_estimate_of_q_z_is_unbiased_over_batches():
  # Chen et al. 2018, App. C.2: with the anchor n* in the batch and the other
  # M-1 examples drawn uniformly without replacement, E[sum_j w_j q(z|n_j)]
  # equals q(z) = 1/N sum_n q(z|n) exactly.
  rng = np.random.default_rng(0)
  N, M, D = 40, 8, 2
  mean = rng.normal(size=(N, D)).astype(np.float32)
  logvar = np.log(rng.uniform(0.2, 1.0, size=(N, D))).astype(np.float32)
  anchor = 3
  z = mean[anchor] + 0.3
  dens = np.exp(np.sum(-0.5 * (np.log(2 * np.pi) + logvar + (z - mean) ** 2 / np.exp(logvar)), 1))
  exact = dens.mean()
  w = np.exp(np.asarray(tcvae.mss_log_weights(M, N), np.float64))[0]
  others = [n for n in range(N) if n != anchor]
  est = [np.sum(w * dens[[anchor] + list(rng.choice(others, M - 1, replace=False))])
         for _ in range(20000)]
  np.testing.assert_allclose(np.mean(est), exact, rtol=0.02)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_terms_sum_to_the_mean_kl(tiny_model, tiny_params, binary_images, estimator):
  x = jnp.asarray(binary_images[:64], jnp.float32)
  fn = jax.jit(lambda k: objectives.batch_decomposition(
      tiny_params, x, k, model=tiny_model, dataset_size=512, estimator=estimator))
  t = objectives.batch_elbo_terms(tiny_params, x, jax.random.key(0), model=tiny_model)
  closed = float(jnp.mean(t["kl"]))
  sums = []
  for i in range(200):
    d = fn(jax.random.key(i))
    s = d["mutual_info"] + d["total_correlation"] + d["dim_kl"]
    # The telescoping identity holds exactly for every sample ...
    np.testing.assert_allclose(s, d["kl_mc"], rtol=1e-4, atol=1e-4)
    sums.append(float(s))
  # ... and the sum is an unbiased estimate of the closed-form mean KL.
  se = np.std(sums) / np.sqrt(len(sums))
  assert abs(np.mean(sums) - closed) < 4 * se + 1e-3, (np.mean(sums), closed, se)


def test_mss_tc_near_zero_for_factorised_codes_and_large_for_correlated():
  tc = {}
  for kind in ("factorised", "correlated"):
    vals = [float(tcvae.decomposition(*_codes(kind, 256, s), estimator="mss")
                  ["total_correlation"]) for s in range(10)]
    tc[kind] = np.mean(vals)
  # True TCs: 0, and (D - 1) log K = 2 log 8 = 4.16 nats.
  assert abs(tc["factorised"]) < 0.1, tc
  assert abs(tc["correlated"] - 2 * np.log(8)) < 0.2, tc


def test_mws_tc_carries_its_published_constant():
  # MWS (Chen et al. 2018, Eq. 5) divides by N M inside every log, which adds
  # exactly (D - 1) log N to the TC relative to weighting each batch member by
  # 1/M; beyond that offset it separates factorised from correlated codes.
  D, N = 3, 8 ** 3
  offset = (D - 1) * np.log(N)
  tc = {}
  for kind in ("factorised", "correlated"):
    vals = []
    for s in range(10):
      z, mean, logvar, n = _codes(kind, 256, s)
      d = tcvae.decomposition(z, mean, logvar, n, estimator="mws")
      pair = tcvae.log_q_pairwise(z, mean, logvar)
      naive = (jax.nn.logsumexp(pair.sum(-1), 1) - np.log(256)
               - jnp.sum(jax.nn.logsumexp(pair, 1) - np.log(256), -1))
      np.testing.assert_allclose(d["total_correlation"], jnp.mean(naive) + offset,
                                 rtol=1e-4)
      vals.append(float(d["total_correlation"]) - offset)
    tc[kind] = np.mean(vals)
  # Beyond the constant: log(N/M) = 0.69 of small-batch bias, and 4.16 + that.
  assert tc["factorised"] < 1.0 and tc["correlated"] > 4.0, tc


def test_dataset_size_is_required_and_checked():
  z, mean, logvar, _ = _codes("factorised", 8, 0)
  with pytest.raises(ValueError, match="dataset_size"):
    tcvae.log_q_estimates(z, mean, logvar, None)
  with pytest.raises(ValueError, match="estimator"):
    tcvae.log_q_estimates(z, mean, logvar, 10, "xyz")
  with pytest.raises(ValueError, match="dataset_size"):
    objectives.get_objective("beta_tcvae", dataset_size=-3)
  with pytest.raises(ValueError, match="estimator"):
    objectives.get_objective("beta_tcvae", estimator="mcmc")
