"""DIP-VAE I and II: the covariances and the penalty."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae.objectives import dip_vae


def test_covariances_match_numpy():
  rng = np.random.default_rng(0)
  mean = rng.normal(size=(50, 3)).astype(np.float32)
  logvar = rng.normal(size=(50, 3)).astype(np.float32)
  cov_i = np.cov(mean.T, bias=True)
  np.testing.assert_allclose(dip_vae.dip_covariance(mean, logvar, "i"), cov_i, rtol=1e-4, atol=1e-6)
  cov_ii = cov_i + np.diag(np.exp(logvar).mean(0))
  np.testing.assert_allclose(dip_vae.dip_covariance(mean, logvar, "ii"), cov_ii, rtol=1e-4, atol=1e-6)
  with pytest.raises(ValueError, match="dip_type"):
    dip_vae.dip_covariance(mean, logvar, "iii")


def test_penalty_is_zero_at_identity_and_weights_its_two_parts():
  assert float(dip_vae.dip_penalty(jnp.eye(4), 3.0, 7.0)) == 0.0
  c = jnp.array([[2.0, 0.5], [0.5, 1.0]])
  # off-diagonal: 2 * 0.25; diagonal: (2 - 1)^2
  np.testing.assert_allclose(dip_vae.dip_penalty(c, 3.0, 7.0), 3.0 * 0.5 + 7.0 * 1.0)


def test_penalty_gradient_decorrelates_the_means(tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[:64], jnp.float32)
  # One compiled gradient for both weightings (op by op, each took ~5 s).
  grad = jax.jit(jax.grad(lambda p, od, d: dip_vae.dip_vae_loss(
      p, x, jax.random.key(0), model=tiny_model, lambda_od=od, lambda_d=d)[0]))
  g, g0 = grad(tiny_params, 10.0, 100.0), grad(tiny_params, 0.0, 0.0)
  # The penalty acts on the encoder only; the decoder's gradient is unchanged.
  for a, b in zip(jax.tree.leaves(g["decoder"]), jax.tree.leaves(g0["decoder"])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  diff = jax.tree.map(jnp.subtract, g["encoder"], g0["encoder"])
  assert max(float(jnp.max(jnp.abs(d))) for d in jax.tree.leaves(diff)) > 1e-3
