"""FactorVAE: permutation, discriminator, and the isolation of the two players."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae import objectives
from vae import train as train_lib
from vae.objectives import factor_vae


def _params(tiny_model):
  state = train_lib.init_state(jax.random.key(0), tiny_model, optax.adam(1e-3),
                               objectives.get_objective("factor_vae"))
  return state.params


def _norm(tree):
  return float(optax.global_norm(tree))


def test_permute_dims_permutes_each_column_independently():
  z = jnp.arange(64 * 4, dtype=jnp.float32).reshape(64, 4)
  p = np.asarray(factor_vae.permute_dims(jax.random.key(0), z))
  for d in range(4):
    np.testing.assert_array_equal(np.sort(p[:, d]), np.asarray(z[:, d]))
  # Rows are broken up: the columns were not moved together.
  rows = {tuple(r) for r in np.asarray(z)}
  assert sum(tuple(r) in rows for r in p) < 8


def test_discriminator_loss_sends_no_gradient_into_the_encoder(tiny_model, binary_images):
  params = _params(tiny_model)
  x = jnp.asarray(binary_images[:32], jnp.float32)

  def d_loss(p):
    t = objectives.batch_elbo_terms(p, x, jax.random.key(1), model=tiny_model)
    return factor_vae.discriminator_loss(p["discriminator"], t["z"], jax.random.key(2))[0]

  g = jax.jit(jax.grad(d_loss))(params)       # one compile, not one per operation
  assert _norm(g["encoder"]) == 0.0 and _norm(g["decoder"]) == 0.0
  assert _norm(g["discriminator"]) > 0.0


def test_vae_loss_does_not_update_the_discriminator(tiny_model, binary_images):
  params = _params(tiny_model)
  x = jnp.asarray(binary_images[:32], jnp.float32)
  grad = jax.jit(jax.grad(lambda p, gamma: factor_vae.factor_vae_loss(
      p, x, jax.random.key(1), model=tiny_model, gamma=gamma)[0]))
  g = grad(params, 35.0)
  assert _norm(g["discriminator"]) == 0.0
  assert _norm(g["encoder"]) > 0.0
  # gamma matters: the TC term reaches the encoder through z.
  g0 = grad(params, 0.0)
  assert _norm(jax.tree.map(jnp.subtract, g["encoder"], g0["encoder"])) > 0.0


@pytest.mark.slow
def test_train_step_applies_each_players_gradient_with_its_own_optimizer(tiny_model,
                                                                          binary_images):
  params = _params(tiny_model)
  x = jnp.asarray(binary_images[:32], jnp.float32)
  key = jax.random.key(3)
  vae_opt, disc_opt = optax.sgd(0.1), optax.sgd(0.01)
  opt = factor_vae.make_optimizer(vae_opt, disc_opt)
  loss = objectives.get_objective("factor_vae", gamma=10.0)
  step = train_lib.make_train_step(loss, tiny_model, opt)
  state = train_lib.TrainState(step=jnp.zeros((), jnp.int32), params=params,
                               opt_state=opt.init(params))
  new, metrics = jax.jit(step)(state, x, key)
  # Each player's update, computed from its own loss alone.
  gv = jax.grad(lambda p: factor_vae.factor_vae_loss(p, x, key, model=tiny_model,
                                                      gamma=10.0)[0])(params)
  t = objectives.batch_elbo_terms(params, x, key, model=tiny_model)
  gd = jax.grad(lambda d: factor_vae.discriminator_loss(
      d, t["z"], jax.random.fold_in(key, 1))[0])(params["discriminator"])
  for part in ("encoder", "decoder"):
    want = jax.tree.map(lambda p, g: p - 0.1 * g, params[part], gv[part])
    for a, b in zip(jax.tree.leaves(new.params[part]), jax.tree.leaves(want)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  want = jax.tree.map(lambda p, g: p - 0.01 * g, params["discriminator"], gd)
  for a, b in zip(jax.tree.leaves(new.params["discriminator"]), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # The reported loss is the VAE player's, not the sum.
  vae_loss = factor_vae.factor_vae_loss(params, x, key, model=tiny_model, gamma=10.0)[0]
  np.testing.assert_allclose(metrics["loss"], vae_loss, rtol=1e-5)


@pytest.mark.slow   # trains the 6 x 1000 discriminator: ~10 s
def test_discriminator_learns_to_separate_correlated_codes():
  # q(z): every dimension equal; product of marginals: independent. A trained
  # discriminator tells them apart and its TC estimate becomes large.
  key = jax.random.key(0)
  disc = factor_vae.init_discriminator(key, 4)
  opt = optax.adam(1e-3)
  st = opt.init(disc)

  @jax.jit
  def step(disc, st, k):
    z = jnp.repeat(jax.random.normal(k, (64, 1)), 4, axis=1)
    (l, acc), g = jax.value_and_grad(factor_vae.discriminator_loss, has_aux=True)(
        disc, z, jax.random.fold_in(k, 1))
    u, st = opt.update(g, st)
    return optax.apply_updates(disc, u), st, acc

  for i in range(150):
    disc, st, acc = step(disc, st, jax.random.fold_in(key, i))
  assert float(acc) > 0.9
  z = jnp.repeat(jax.random.normal(jax.random.key(9), (512, 1)), 4, axis=1)
  assert float(jnp.mean(factor_vae.discriminator_logits(disc, z))) > 1.0
