"""Likelihoods for non-binary data: the cross-entropy on [0, 1] targets and
the Gaussian with fixed or learned (shared, per-pixel) variance, against
values computed by hand in float64; the data check says which fits."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import checks, distributions as dist, model as model_lib, objectives, optim
from vae import train as train_lib
from vae.data import sources

RNG = np.random.default_rng(0)
X = RNG.random((4, 4, 1)).astype(np.float32)        # [0, 1] targets, not binary
LOGITS = RNG.normal(0, 2, (4, 4, 1)).astype(np.float32)


def _sigmoid(a):
  return 1.0 / (1.0 + np.exp(-a))


def test_cross_entropy_is_the_negative_binary_cross_entropy_by_hand():
  x, l = X.astype(np.float64), LOGITS.astype(np.float64)
  p = _sigmoid(l)
  want = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p))
  got = float(dist.cross_entropy_log_prob(jnp.asarray(X), jnp.asarray(LOGITS)))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  # Not a normalised likelihood: its maximum over the logits (at
  # sigmoid(l) = x) is minus the targets' entropy, below 0 for x in (0, 1).
  best = float(dist.cross_entropy_log_prob(jnp.asarray(X), jnp.log(X / (1 - X))))
  entropy = -np.sum(x * np.log(x) + (1 - x) * np.log(1 - x))
  np.testing.assert_allclose(best, -entropy, rtol=1e-4)
  assert best < 0


def test_the_gaussian_likelihoods_equal_the_density_by_hand():
  x, m = X.astype(np.float64), LOGITS.astype(np.float64) * 0.1
  for logvar in (0.0, -3.0, RNG.normal(size=(4, 4, 1))):
    lv = np.broadcast_to(np.asarray(logvar, np.float64), x.shape)
    want = np.sum(-0.5 * np.log(2 * np.pi * np.exp(lv)) - (x - m) ** 2 / (2 * np.exp(lv)))
    got = float(dist.gaussian_likelihood_log_prob(jnp.asarray(X), jnp.asarray(m, jnp.float32),
                                                  jnp.asarray(logvar, jnp.float32)))
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("obs_variance", ["shared", "per_pixel"])
def test_a_learned_variance_is_a_parameter_and_enters_the_likelihood(obs_variance):
  m = model_lib.make_model(architecture="mlp", data_shape=(4, 4, 1), latent_dim=2,
                           encoder_hidden=(8,), decoder_hidden=(8,), likelihood="gaussian",
                           obs_variance=obs_variance, obs_logvar=-1.0)
  params = model_lib.init_params(jax.random.key(0), m)
  assert params["obs_logvar"].shape == (() if obs_variance == "shared" else (4, 4, 1))
  np.testing.assert_allclose(np.asarray(model_lib.obs_logvar(params, m)), -1.0, rtol=1e-6)
  params["obs_logvar"] = params["obs_logvar"] + jnp.asarray(
      RNG.normal(size=params["obs_logvar"].shape), jnp.float32)
  z = jnp.asarray([0.3, -0.2])
  out = model_lib.decode(params, z, model=m)
  assert out.shape == (4, 4, 1, 2) == (*m.decoder_out_shape,)
  mean = np.asarray(out[..., 0], np.float64)
  lv = np.broadcast_to(np.asarray(model_lib.obs_logvar(params, m), np.float64), mean.shape)
  want = np.sum(-0.5 * np.log(2 * np.pi * np.exp(lv)) - (X - mean) ** 2 / (2 * np.exp(lv)))
  got = float(model_lib.log_likelihood(jnp.asarray(X), out, model=m))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(model_lib.likelihood_mean(out, m)), out[..., 0])
  # The floor: however low the raw parameter goes, the variance stays above it.
  params["obs_logvar"] = jnp.full_like(params["obs_logvar"], -1e4)
  assert float(jnp.min(model_lib.obs_logvar(params, m))) == pytest.approx(m.min_obs_logvar)


@pytest.mark.slow
def test_a_learned_variance_trains_towards_the_noise_level(tmp_path):
  """Data = a fixed pattern plus N(0, 0.1^2) noise: the learned shared
  variance moves from exp(0) = 1 towards 0.01."""
  pattern = RNG.random((1, 6, 6, 1)).astype(np.float32)
  data = pattern + 0.1 * RNG.normal(size=(512, 6, 6, 1)).astype(np.float32)
  m = model_lib.make_model(architecture="mlp", data_shape=(6, 6, 1), latent_dim=2,
                           encoder_hidden=(16,), decoder_hidden=(16,), likelihood="gaussian",
                           obs_variance="shared")
  state = train_lib.train(
      str(tmp_path), model=m, objective=objectives.get_objective("vae"),
      optimizer=optim.make_optimizer(1e-2),
      source=sources.make_source(data, 64, jax.random.key(1), model=m),
      schedule=train_lib.Schedule(num_steps=400, log_every=100, checkpoint_every=400),
      progress=False)
  var = math.exp(float(model_lib.obs_logvar(state.params, m)))
  assert 0.005 < var < 0.03, var


def test_config_errors_for_learned_variances():
  with pytest.raises(ValueError, match="needs likelihood='gaussian'"):
    model_lib.make_model(architecture="mlp", data_shape=(4, 4, 1), latent_dim=2,
                         likelihood="cross_entropy", obs_variance="shared")
  with pytest.raises(ValueError, match="obs_variance must be one of"):
    model_lib.make_model(architecture="mlp", data_shape=(4, 4, 1), latent_dim=2,
                         likelihood="gaussian", obs_variance="learned")


def test_the_data_check_accepts_what_each_likelihood_accepts_and_names_the_one_that_fits():
  grey = np.full((3, 4, 4, 1), 0.5, np.float32)
  pixels = np.full((3, 4, 4, 1), 200, np.uint8)
  checks.check_data(grey, likelihood="cross_entropy")
  checks.check_data(grey, likelihood="gaussian")
  checks.check_data(pixels, likelihood="gaussian")
  checks.check_data(pixels, likelihood="cross_entropy", scale=1 / 255)
  with pytest.raises(ValueError, match=r"must be binary.*fit likelihood='cross_entropy'"):
    checks.check_data(grey, likelihood="bernoulli")
  with pytest.raises(ValueError, match=r"must lie in \[0, 1\].*fit likelihood='gaussian'"):
    checks.check_data(pixels, likelihood="cross_entropy")
  with pytest.raises(ValueError, match=r"must be binary.*outside \[0, 1\] fit likelihood='gaussian'"):
    checks.check_data(pixels, likelihood="bernoulli")
  binary = np.where(RNG.random((3, 4, 4, 1)) > 0.5, 255, 0).astype(np.uint8)
  checks.check_data(binary, likelihood="bernoulli", scale=1 / 255)
