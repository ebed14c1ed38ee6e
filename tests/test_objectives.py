"""Objectives: registry, IWAE vs ELBO, autoencoders, hyperparameter checks."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import distributions as dist
from vae import model as model_lib
from vae import objectives
from vae import posteriors
from vae import train as train_lib
from vae import optim
from vae.data import sources


def test_vae_loss_is_negative_mean_elbo(tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[:16], jnp.float32)
  key = jax.random.key(0)
  loss, aux = objectives.vae_loss(tiny_params, x, key, model=tiny_model)
  keys = jax.random.split(key, 16)
  elbos = jax.vmap(lambda xi, k: model_lib.elbo(tiny_params, xi, k, model=tiny_model))(x, keys)
  np.testing.assert_allclose(loss, -jnp.mean(elbos), rtol=1e-5)
  np.testing.assert_allclose(aux["elbo"], aux["log_likelihood"] - aux["kl"], rtol=1e-5)


def test_beta_weights_only_the_kl(tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[:16], jnp.float32)
  key = jax.random.key(0)
  l1, a1 = objectives.vae_loss(tiny_params, x, key, model=tiny_model, beta=1.0)
  l4, a4 = objectives.vae_loss(tiny_params, x, key, model=tiny_model, beta=4.0)
  # Losses are ~550 in float32 (ulp ~ 6e-5): compare the difference absolutely.
  np.testing.assert_allclose(l4 - l1, 3.0 * a1["kl"], atol=5e-4)
  np.testing.assert_allclose(a4["elbo"], a1["elbo"], rtol=1e-6)  # the bound itself is unchanged


def test_iwae_k1_equals_elbo_with_the_same_sample(tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[3], jnp.float32)
  key = jax.random.key(7)
  k1 = objectives.iwae_bound(tiny_params, x, key, model=tiny_model, num_samples=1)
  mean, logvar = model_lib.encode(tiny_params, x, model=tiny_model)
  z = model_lib.reparameterize(key, mean, logvar, 1)[0]
  single = (model_lib.log_likelihood(x, model_lib.decode(tiny_params, z, model=tiny_model),
                                     model=tiny_model)
            + dist.standard_normal_log_prob(z) - dist.gaussian_log_prob(z, mean, logvar))
  np.testing.assert_allclose(k1, single, rtol=1e-5)
  # Same reconstruction sample as the ELBO with that key; in expectation the
  # Monte Carlo KL equals the closed form, so L_1 averages to the ELBO.
  keys = jax.random.split(jax.random.key(8), 20_000)
  l1 = jax.jit(jax.vmap(lambda k: objectives.iwae_bound(tiny_params, x, k, model=tiny_model,
                                                        num_samples=1)))(keys)
  el = jax.jit(jax.vmap(lambda k: model_lib.elbo(tiny_params, x, k, model=tiny_model)))(keys)
  se = float(jnp.std(l1 - el)) / np.sqrt(keys.shape[0])
  assert abs(float(jnp.mean(l1) - jnp.mean(el))) < 5 * se + 1e-3


@pytest.fixture(scope="module")
def trained_tiny(binary_images):
  """A small VAE trained for a few hundred steps on the bar/box images."""
  m = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1), latent_dim=4,
                           encoder_hidden=(64,), decoder_hidden=(64,))
  opt = optim.make_optimizer(3e-3)
  state = train_lib.init_state(jax.random.key(0), m, opt)
  src = sources.ArraySource(binary_images, 64, jax.random.key(1))
  run = train_lib.make_scan_loop(
      train_lib.make_train_step(objectives.get_objective("vae"), m, opt), src)
  state, metrics = run(state, src.arrays(), jax.random.key(2), 400)
  return m, state.params, np.asarray(metrics["loss"])


@pytest.mark.slow
def test_iwae_bound_grows_with_k_on_a_trained_model(trained_tiny, binary_images):
  m, params, _ = trained_tiny
  x = jnp.asarray(binary_images[:200], jnp.float32)
  means = []
  for k in (1, 5, 50):
    keys = jax.random.split(jax.random.key(k), x.shape[0] * 4).reshape(x.shape[0], 4)
    b = jax.vmap(jax.vmap(lambda xi, kk: objectives.iwae_bound(
        params, xi, kk, model=m, num_samples=k), in_axes=(None, 0)))(x, keys)
    means.append(float(jnp.mean(b)))
  assert means[0] < means[1] < means[2], means
  assert means[2] - means[0] > 0.5  # a real gap, not noise


@pytest.mark.slow
def test_iwae_loss_gradient_is_finite_and_trains(trained_tiny, binary_images):
  m, params, _ = trained_tiny
  x = jnp.asarray(binary_images[:32], jnp.float32)
  (loss, aux), g = jax.value_and_grad(
      lambda p: objectives.iwae_loss(p, x, jax.random.key(0), model=m, num_samples=5),
      has_aux=True)(params)
  assert np.isfinite(float(loss))
  assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(g))
  assert float(aux["iwae_bound"]) >= float(aux["elbo"]) - 2.0


def test_dae_without_noise_is_the_autoencoder(tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[:16], jnp.float32)
  ae, _ = objectives.ae_loss(tiny_params, x, jax.random.key(0), model=tiny_model)
  dae0, _ = objectives.dae_loss(tiny_params, x, jax.random.key(0), model=tiny_model,
                                corruption="masking", noise_level=0.0)
  np.testing.assert_allclose(dae0, ae, rtol=1e-6)
  daeg, _ = objectives.dae_loss(tiny_params, x, jax.random.key(0), model=tiny_model,
                                corruption="gaussian", noise_level=0.0)
  np.testing.assert_allclose(daeg, ae, rtol=1e-6)


def test_masking_corruption_rate():
  from vae.objectives.autoencoders import corrupt
  x = jnp.ones((100, 100))
  y = corrupt(jax.random.key(0), x, corruption="masking", noise_level=0.3)
  assert abs(float(1 - y.mean()) - 0.3) < 0.01
  g = corrupt(jax.random.key(0), x, corruption="gaussian", noise_level=0.5)
  assert abs(float(jnp.std(g - x)) - 0.5) < 0.01


@pytest.mark.slow
def test_registry_and_objectives_jit_and_share_the_signature(tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[:8], jnp.float32)
  assert sorted(objectives.REGISTRY) == ["ae", "annealed_vae", "beta_tcvae", "beta_vae", "dae",
                                         "dip_vae_i", "dip_vae_ii", "factor_vae", "info_vae",
                                         "iwae", "joint_vae", "vae", "vq_vae", "wae_mmd"]
  family_hparams = {"vq": {"code_dim": 2}, "joint": {"num_categories": 2}}
  for name in objectives.REGISTRY:
    fn = objectives.get_objective(name, **({"dataset_size": 100} if name == "beta_tcvae" else {}))
    model, params = tiny_model, tiny_params
    family = fn.record.posterior_family
    if family:           # the objectives of one posterior family (JointVAE, VQ-VAE)
      model = dataclasses.replace(tiny_model, posterior=posteriors.make(
          family, **family_hparams[family]))
      params = model_lib.init_params(jax.random.key(2), model)
    params = {**params, **fn.init_extra_params(jax.random.key(1), model)}
    loss, aux = jax.jit(lambda p, b, k: fn(p, b, k, model=model))(
        params, x, jax.random.key(0))
    assert loss.shape == () and np.isfinite(float(loss)), name
    assert "log_likelihood" in aux and all(v.shape == () for v in aux.values()), name


@pytest.mark.parametrize("name,hp,match", [
    ("vae", dict(beta=-1.0), "beta must be >= 0"),
    ("iwae", dict(num_samples=0), r"num_samples \(k\) must be an integer >= 1"),
    ("iwae", dict(num_samples=2.5), r"num_samples \(k\) must be an integer >= 1"),
    ("dae", dict(corruption="salt"), "corruption must be one of"),
    ("dae", dict(corruption="masking", noise_level=1.0), r"noise_level must be in \[0, 1\)"),
    ("nope", dict(), "objective must be one of"),
    ("beta_vae", dict(gamma=3.0), r"objective 'beta_vae' has no hyperparameter\(s\) \['gamma'\]"),
    ("ae", dict(beta=1.0), r"has no hyperparameter"),
])
def test_bad_hyperparameters_raise(name, hp, match):
  with pytest.raises(ValueError, match=match):
    objectives.get_objective(name, **hp)


# ------------------------------------------------- the disentangling family
# Each objective with the settings that switch its extra term off.
ELBO_SETTINGS = {
    "beta_vae": {"beta": 1.0},
    "annealed_vae": {"gamma": 1.0, "c_max": 0.0},
    "beta_tcvae": {"alpha": 1.0, "beta": 1.0, "gamma": 1.0, "dataset_size": 1000},
    "factor_vae": {"gamma": 0.0},
    "dip_vae_i": {"lambda_od": 0.0, "lambda_d": 0.0},
    "dip_vae_ii": {"lambda_od": 0.0, "lambda_d": 0.0},
}
ACTIVE_SETTINGS = {
    "beta_vae": {"beta": 4.0},
    "annealed_vae": {"gamma": 100.0, "c_max": 5.0, "iteration_threshold": 10},
    "beta_tcvae": {"beta": 6.0, "dataset_size": 1000},
    "factor_vae": {"gamma": 35.0},
    "dip_vae_i": {"lambda_od": 10.0, "lambda_d": 100.0},
    "dip_vae_ii": {"lambda_od": 10.0, "lambda_d": 10.0},
}


def _family_params(name, tiny_model, tiny_params):
  extra = objectives.get_objective(name).init_extra_params(jax.random.key(5), tiny_model)
  return {**tiny_params, **extra}


@pytest.mark.parametrize("name", sorted(ELBO_SETTINGS))
def test_each_objective_reduces_to_the_plain_elbo(name, tiny_model, tiny_params,
                                                  binary_images):
  x = jnp.asarray(binary_images[:16], jnp.float32)
  key = jax.random.key(11)
  params = _family_params(name, tiny_model, tiny_params)
  want, _ = objectives.vae_loss(tiny_params, x, key, model=tiny_model)
  loss_fn = (objectives.factor_vae_loss if name == "factor_vae"
             else objectives.get_objective(name, **ELBO_SETTINGS[name]))
  kw = ELBO_SETTINGS[name] if name == "factor_vae" else {}
  got, aux = loss_fn(params, x, key, model=tiny_model, **kw)
  np.testing.assert_allclose(got, want, rtol=1e-6)
  np.testing.assert_allclose(aux["elbo"], -want, rtol=1e-6)
  # ... and the active setting changes it.
  active = (objectives.factor_vae_loss if name == "factor_vae"
            else objectives.get_objective(name, **ACTIVE_SETTINGS[name]))
  kw = ACTIVE_SETTINGS[name] if name == "factor_vae" else {}
  extra = {"step": 3} if name == "annealed_vae" else {}
  assert abs(float(active(params, x, key, model=tiny_model, **kw, **extra)[0]) - float(want)) > 1e-3


@pytest.mark.parametrize("name", sorted(ACTIVE_SETTINGS))
def test_each_objective_runs_under_jit_and_vmap(name, tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[:16], jnp.float32)
  params = _family_params(name, tiny_model, tiny_params)
  loss_fn = objectives.get_objective(name, **ACTIVE_SETTINGS[name])
  extra = {"step": jnp.int32(4)} if name == "annealed_vae" else {}
  f = lambda k: loss_fn(params, x, k, model=tiny_model, **extra)[0]
  keys = jax.random.split(jax.random.key(0), 3)
  batched = jax.jit(jax.vmap(f))(keys)
  looped = jnp.stack([f(k) for k in keys])
  np.testing.assert_allclose(batched, looped, rtol=2e-5)
  assert np.all(np.isfinite(np.asarray(batched)))


@pytest.mark.slow
def test_beta_can_be_vmapped_as_a_traced_hyperparameter(tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[:16], jnp.float32)
  f = lambda b: objectives.tc_vae_loss(tiny_params, x, jax.random.key(0), model=tiny_model,
                                       beta=b, dataset_size=1000)
  losses, aux = jax.vmap(f)(jnp.array([1.0, 2.0, 3.0]))
  tc = aux["total_correlation"][0]
  np.testing.assert_allclose(losses[1:] - losses[0], jnp.array([1.0, 2.0]) * tc, rtol=1e-3, atol=1e-3)


def test_capacity_rises_linearly_to_c_max():
  c = [float(objectives.capacity(s, 25.0, 100)) for s in (0, 50, 100, 1000)]
  np.testing.assert_allclose(c, [0.0, 12.5, 25.0, 25.0])
  assert float(objectives.capacity(None, 25.0, 100)) == 25.0


def test_annealed_vae_penalises_distance_from_the_capacity(tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[:16], jnp.float32)
  key = jax.random.key(0)
  _, aux = objectives.vae_loss(tiny_params, x, key, model=tiny_model)
  for step in (0, 5, 10):
    loss, a = objectives.annealed_vae_loss(tiny_params, x, key, model=tiny_model, gamma=7.0,
                                           c_max=4.0, iteration_threshold=10, step=step)
    c = 4.0 * step / 10
    np.testing.assert_allclose(loss, -aux["log_likelihood"] + 7.0 * abs(float(aux["kl"]) - c),
                               rtol=1e-5)


@pytest.mark.parametrize("bound", [True, False])
def test_train_step_passes_the_step_to_the_annealed_objective(tiny_model, binary_images, bound):
  import functools
  import optax
  opt = optax.sgd(0.0)
  hp = dict(gamma=1.0, c_max=10.0, iteration_threshold=10)
  # The registry's bound objective, and a plain partial of the loss function.
  loss = (objectives.get_objective("annealed_vae", **hp) if bound
          else functools.partial(objectives.annealed_vae_loss, **hp))
  step = jax.jit(train_lib.make_train_step(loss, tiny_model, opt))
  state = train_lib.init_state(jax.random.key(0), tiny_model, opt)
  x = jnp.asarray(binary_images[:8], jnp.float32)
  caps = []
  for _ in range(3):
    state, m = step(state, x, jax.random.key(1))
    caps.append(float(m["capacity"]))
  np.testing.assert_allclose(caps, [0.0, 1.0, 2.0])


def test_integer_hyperparameters_are_stored_as_integers():
  for name, field in (("iwae", "num_samples"), ("annealed_vae", "iteration_threshold"),
                      ("beta_tcvae", "dataset_size")):
    value = getattr(objectives.get_objective(name, **{field: 5.0}).hparams, field)
    assert value == 5 and type(value) is int, (name, value)


@pytest.mark.parametrize("name,bad,match", [
    ("annealed_vae", {"gamma": -1.0}, "gamma"),
    ("annealed_vae", {"iteration_threshold": 0}, "iteration_threshold"),
    ("annealed_vae", {"c_max": -5.0}, "c_max"),
    ("beta_tcvae", {"alpha": -0.5}, "alpha"),
    ("dip_vae_i", {"lambda_od": -1.0}, "lambda_od"),
    ("dip_vae_ii", {"lambda_d": -1.0}, "lambda_d"),
    ("factor_vae", {"gamma": float("nan")}, "gamma"),
])
def test_family_hyperparameters_are_checked(name, bad, match):
  with pytest.raises(ValueError, match=match):
    objectives.get_objective(name, **bad)


def test_kl_warm_up_weights_the_kl_by_the_step(tiny_model, tiny_params, binary_images):
  x, key = jnp.asarray(binary_images[:8], jnp.float32), jax.random.key(0)
  plain = objectives.get_objective("vae")
  warm = objectives.get_objective("vae", warmup_steps=100)
  for step, weight in ((0, 0.0), (50, 0.5), (100, 1.0), (400, 1.0)):
    loss, aux = warm(tiny_params, x, key, model=tiny_model, step=step)
    np.testing.assert_allclose(float(loss), -float(aux["log_likelihood"])
                               + weight * float(aux["kl"]), rtol=1e-6)
    assert float(aux["kl_weight"]) == weight
  # No warm-up: the same loss whatever the step (the train step passes it).
  a = plain(tiny_params, x, key, model=tiny_model, step=7)[0]
  assert float(a) == float(plain(tiny_params, x, key, model=tiny_model)[0])
