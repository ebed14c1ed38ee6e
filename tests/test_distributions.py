"""Closed forms against Monte Carlo; sampling moments and gradients."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import distributions as dist

KEY = jax.random.key(0)


def _mc_kl(key, mq, lq, mp, lp, n=400_000):
  return dist.kl_monte_carlo(
      key,
      sample_q=lambda k: dist.reparameterized_sample(k, mq, lq),
      log_q=lambda z: dist.gaussian_log_prob(z, mq, lq),
      log_p=lambda z: dist.gaussian_log_prob(z, mp, lp),
      num_samples=n)


@pytest.mark.parametrize("isotropic", [False, True])
def test_kl_to_standard_normal_matches_monte_carlo(isotropic):
  mean = jnp.array([0.5, -1.0, 2.0])
  logvar = jnp.array([0.3]) if isotropic else jnp.array([-1.0, 0.5, 0.0])
  closed = dist.kl_to_standard_normal(mean, logvar)
  mc = _mc_kl(KEY, mean, logvar, jnp.zeros(3), jnp.zeros(3))
  # MC std error here is ~0.005; 5 sigma.
  np.testing.assert_allclose(mc, closed, atol=0.03)
  var = np.exp(np.broadcast_to(np.asarray(logvar), (3,)))
  by_hand = 0.5 * np.sum(var + np.asarray(mean) ** 2 - 1 - np.log(var))
  np.testing.assert_allclose(closed, by_hand, rtol=1e-5)


def test_kl_between_gaussians_matches_monte_carlo_and_is_asymmetric():
  mq, lq = jnp.array([0.0, 1.0]), jnp.array([-2.0, 0.0])
  mp, lp = jnp.array([1.0, 0.0]), jnp.array([1.0, 0.5])
  kqp = dist.kl_diagonal_gaussians(mq, lq, mp, lp)
  kpq = dist.kl_diagonal_gaussians(mp, lp, mq, lq)
  np.testing.assert_allclose(_mc_kl(KEY, mq, lq, mp, lp), kqp, atol=0.03)
  np.testing.assert_allclose(_mc_kl(KEY, mp, lp, mq, lq), kpq, rtol=0.02)
  assert abs(float(kqp - kpq)) > 1.0  # forward and reverse KL differ here
  # KL to N(0, I) is the special case p = N(0, I).
  np.testing.assert_allclose(
      dist.kl_diagonal_gaussians(mq, lq, jnp.zeros(2), jnp.zeros(2)),
      dist.kl_to_standard_normal(mq, lq), rtol=1e-6)


def test_kl_is_zero_for_equal_and_stable_near_zero():
  m = jnp.zeros(4)
  assert float(dist.kl_to_standard_normal(m, jnp.zeros(4))) == 0.0
  kl = dist.kl_to_standard_normal(m, jnp.full(4, 1e-4))
  # 0.5 * (expm1(lv) - lv) ~= lv^2 / 4 per dimension; no cancellation to 0.
  np.testing.assert_allclose(kl, 4 * (1e-4) ** 2 / 4, rtol=1e-2)


def test_reparameterized_samples_have_right_moments():
  mean, logvar = jnp.array([1.0, -2.0, 0.5]), jnp.array([0.0, -1.0, 1.0])
  z = dist.reparameterized_sample(KEY, mean, logvar, num_samples=200_000)
  chex.assert_shape(z, (200_000, 3))
  np.testing.assert_allclose(z.mean(0), mean, atol=0.02)
  np.testing.assert_allclose(z.var(0), jnp.exp(logvar), rtol=0.02)


def test_reparameterized_samples_carry_gradients():
  mean, logvar = jnp.array([1.0, -2.0]), jnp.array([0.3, -0.7])

  def moments(m, lv):
    z = dist.reparameterized_sample(KEY, m, lv, num_samples=100_000)
    return jnp.mean(jnp.sum(z, -1)), jnp.mean(jnp.sum(z ** 2, -1))

  # d E[z]/d mean = 1, d E[z]/d logvar = 0 ;  d E[z^2]/d logvar = var.
  g_mean = jax.grad(lambda m: moments(m, logvar)[0])(mean)
  np.testing.assert_allclose(g_mean, 1.0, rtol=1e-5)
  g_lv = jax.grad(lambda lv: moments(mean, lv)[1])(logvar)
  np.testing.assert_allclose(g_lv, jnp.exp(logvar), rtol=0.03)
  g_m2 = jax.grad(lambda m: moments(m, logvar)[1])(mean)
  np.testing.assert_allclose(g_m2, 2 * mean, rtol=0.03, atol=0.01)


def test_isotropic_sample_shares_one_variance():
  z = dist.reparameterized_sample(KEY, jnp.zeros(5), jnp.array([np.log(4.0)]),
                                  num_samples=100_000)
  np.testing.assert_allclose(z.var(0), 4.0, rtol=0.03)


def test_bernoulli_log_prob_matches_naive_formula_and_is_finite():
  x = jnp.array([0.0, 1.0, 1.0, 0.0])
  logits = jnp.array([-3.0, 2.0, 0.1, 0.0])
  p = 1 / (1 + np.exp(-np.asarray(logits)))
  naive = np.sum(np.asarray(x) * np.log(p) + (1 - np.asarray(x)) * np.log(1 - p))
  np.testing.assert_allclose(dist.bernoulli_log_prob(x, logits), naive, rtol=1e-6)
  extreme = dist.bernoulli_log_prob(jnp.array([1.0, 0.0]), jnp.array([-200.0, 200.0]))
  assert np.isfinite(float(extreme)) and float(extreme) == pytest.approx(-400.0)


def test_gaussian_log_prob_matches_formula():
  x, m, lv = jnp.array([0.3, -1.0]), jnp.array([0.0, 0.5]), jnp.array([0.2, -0.4])
  var = np.exp(np.asarray(lv))
  by_hand = np.sum(-0.5 * np.log(2 * np.pi * var)
                   - (np.asarray(x) - np.asarray(m)) ** 2 / (2 * var))
  np.testing.assert_allclose(dist.gaussian_log_prob(x, m, lv), by_hand, rtol=1e-6)
  np.testing.assert_allclose(dist.gaussian_likelihood_log_prob(x, m, 0.0),
                             dist.gaussian_log_prob(x, m, jnp.zeros(2)), rtol=1e-6)


def test_unknown_likelihood_is_rejected():
  with pytest.raises(ValueError, match="likelihood must be one of"):
    dist.log_likelihood("poisson", jnp.zeros(2), jnp.zeros(2))


@pytest.mark.parametrize("shared,narrow", [(False, False), (True, False), (False, True)])
def test_gaussian_mixture_log_prob_is_the_mixture_and_its_gradient_autodiffs(shared, narrow):
  rng = np.random.default_rng(0)
  k, d, b = 7, 5, 11
  # narrow: components of sd ~1e-3 far from 0, where expanding (z - m)^2
  # into products would cancel to nonsense.
  means = jnp.asarray(rng.normal(10.0 if narrow else 0.0, 1.5, (k, d)), jnp.float32)
  lo, hi = (-14, -12) if narrow else (-8, 1)
  logvars = jnp.asarray(rng.uniform(lo, hi, (k, 1 if shared else d)), jnp.float32)
  sd = np.exp(0.5 * np.asarray(logvars)).max()
  z = jnp.asarray(means[rng.integers(0, k, b)] + sd * rng.normal(size=(b, d)), jnp.float32)

  def direct(z, means, logvars):   # the per-point, per-component definition
    return jax.vmap(lambda zz: jax.nn.logsumexp(jax.vmap(
        lambda m, lv: dist.gaussian_log_prob(zz, m, lv))(means, logvars)) - np.log(k))(z)
  got = dist.gaussian_mixture_log_prob(z, means, logvars)
  np.testing.assert_array_equal(got, direct(z, means, logvars))     # the same numbers
  # ... the mixture density (float64 reference, by hand) ...
  z64, m64 = np.asarray(z, np.float64), np.asarray(means, np.float64)
  v64 = np.exp(np.broadcast_to(np.asarray(logvars, np.float64), (k, d)))
  dens = np.exp(-0.5 * ((z64[:, None] - m64[None]) ** 2 / v64).sum(-1)) / np.sqrt(
      (2 * np.pi * v64).prod(-1))
  if not narrow:                     # (there the densities overflow float64)
    np.testing.assert_allclose(got, np.log(dens.mean(1)), rtol=1e-5, atol=1e-4)
  # ... and the hand-written gradient is autodiff's of the definition.
  w = jnp.asarray(rng.normal(size=b), jnp.float32)
  want = jax.grad(lambda *a: jnp.sum(w * direct(*a)), argnums=(0, 1, 2))(z, means, logvars)
  have = jax.grad(lambda *a: jnp.sum(w * dist.gaussian_mixture_log_prob(*a)),
                  argnums=(0, 1, 2))(z, means, logvars)
  for h, g in zip(have, want):
    assert h.shape == g.shape
    np.testing.assert_allclose(h, g, rtol=2e-4, atol=2e-4 * float(jnp.max(jnp.abs(g))))
  with pytest.raises(ValueError, match=r"z must be \[B, D\].*got \(5,\) and \(7, 5\)"):
    dist.gaussian_mixture_log_prob(z[0], means, logvars)
