"""WAE-MMD and InfoVAE (vae/objectives/mmd.py): the MMD estimator against
its closed form, and the objectives' known limits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import model as model_lib
from vae import objectives
from vae.objectives import mmd as mmd_lib


def test_the_unbiased_mmd_matches_the_closed_form_for_two_gaussians():
  d, n, reps = 3, 64, 1000
  shift = jnp.array([0.8, 0.0, 0.0])
  keys = jax.random.split(jax.random.key(0), reps)

  def one(k):
    ka, kb = jax.random.split(k)
    return (mmd_lib.mmd(jax.random.normal(ka, (n, d)), jax.random.normal(kb, (n, d)), "rbf"),
            mmd_lib.mmd(jax.random.normal(ka, (n, d)) + shift,
                        jax.random.normal(kb, (n, d)), "rbf"))
  same, apart = map(np.asarray, jax.jit(jax.vmap(one))(keys))
  # E k(x, x') for x - x' ~ N(m, 2I) under exp(-|u|^2 / (2 s2)), s2 = d:
  s2 = float(d)
  c = (s2 / (s2 + 2.0)) ** (d / 2)
  want = 2.0 * c * (1.0 - np.exp(-float(shift @ shift) / (2.0 * (s2 + 2.0))))
  for est, target in ((same, 0.0), (apart, want)):
    se = est.std() / np.sqrt(reps)
    assert abs(est.mean() - target) < 4 * se, (est.mean(), target, se)
  assert want > 20 * apart.std() / np.sqrt(reps)          # the test can tell them apart
  with pytest.raises(ValueError, match="kernel must be one of"):
    mmd_lib.kernel_matrix(jnp.zeros((2, 1)), jnp.zeros((2, 1)), "laplace")


def _setup():
  m = model_lib.make_model(architecture="mlp", data_shape=(6, 6, 1), latent_dim=3,
                           encoder_hidden=(8,), decoder_hidden=(8,))
  p = model_lib.init_params(jax.random.key(0), m)
  x = (jax.random.uniform(jax.random.key(1), (16, 6, 6, 1)) > 0.5).astype(jnp.float32)
  return m, p, x


def test_info_vae_at_alpha_0_lambda_1_is_the_elbo_and_wae_at_lambda_0_the_reconstruction():
  m, p, x = _setup()
  key = jax.random.key(2)
  vae, _ = objectives.get_objective("vae")(p, x, key, model=m)
  info, aux = objectives.get_objective("info_vae", alpha=0.0, lambda_mmd=1.0)(
      p, x, key, model=m)
  assert float(info) == float(vae) and float(aux["mmd"]) != 0.0
  recon, _ = objectives.get_objective("beta_vae", beta=0.0)(p, x, key, model=m)
  wae, aux = objectives.get_objective("wae_mmd", lambda_mmd=0.0)(p, x, key, model=m)
  assert float(wae) == float(recon)
  wae10, _ = objectives.get_objective("wae_mmd")(p, x, key, model=m)
  np.testing.assert_allclose(float(wae10), float(recon) + 10.0 * float(aux["mmd"]), rtol=1e-6)
  with pytest.raises(ValueError, match="alpha must be <= 1"):
    objectives.get_objective("info_vae", alpha=2.0)
  with pytest.raises(ValueError, match="MMD weight"):
    objectives.get_objective("info_vae", alpha=0.0, lambda_mmd=0.5)
