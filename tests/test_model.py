"""The four pure functions: vmap, jit and keys behave as the contracts say."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import model as model_lib


def test_elbo_vmap_equals_python_loop(tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[:8], jnp.float32)
  keys = jax.random.split(jax.random.key(1), 8)
  batched = jax.vmap(lambda xi, k: model_lib.elbo(tiny_params, xi, k, model=tiny_model))(x, keys)
  looped = jnp.stack([model_lib.elbo(tiny_params, x[i], keys[i], model=tiny_model)
                      for i in range(8)])
  chex.assert_shape(batched, (8,))
  np.testing.assert_allclose(batched, looped, rtol=1e-5, atol=1e-4)


def test_elbo_jit_equals_eager_and_same_key_same_result(tiny_model, tiny_params, binary_images):
  x = jnp.asarray(binary_images[0], jnp.float32)
  key = jax.random.key(3)
  eager = model_lib.elbo(tiny_params, x, key, model=tiny_model)
  jitted = jax.jit(model_lib.elbo, static_argnames="model")(tiny_params, x, key, model=tiny_model)
  np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-4)
  assert float(model_lib.elbo(tiny_params, x, key, model=tiny_model)) == float(eager)
  other = model_lib.elbo(tiny_params, x, jax.random.key(4), model=tiny_model)
  assert float(other) != float(eager)


def test_elbo_is_log_likelihood_minus_kl(tiny_model, tiny_params, binary_images):
  t = model_lib.elbo_terms(tiny_params, jnp.asarray(binary_images[0], jnp.float32),
                           jax.random.key(0), model=tiny_model)
  np.testing.assert_allclose(t["elbo"], t["log_likelihood"] - t["kl"], rtol=1e-6)
  np.testing.assert_allclose(jnp.sum(t["kl_per_dim"]), t["kl"], rtol=1e-6)
  assert float(t["kl"]) >= 0


def test_shapes_of_encode_decode(tiny_model, tiny_params):
  mean, logvar = model_lib.encode(tiny_params, jnp.zeros((28, 28, 1)), model=tiny_model)
  chex.assert_shape([mean, logvar], (4,))
  chex.assert_shape(model_lib.decode(tiny_params, jnp.zeros(4), model=tiny_model), (28, 28, 1))
  chex.assert_shape(model_lib.decode(tiny_params, jnp.zeros((7, 4)), model=tiny_model),
                    (7, 28, 28, 1))


def test_isotropic_posterior_has_one_variance():
  m = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1), latent_dim=6,
                           posterior="isotropic", encoder_hidden=(16,), decoder_hidden=(16,))
  p = model_lib.init_params(jax.random.key(0), m)
  mean, logvar = model_lib.encode(p, jnp.ones((28, 28, 1)), model=m)
  chex.assert_shape(mean, (6,))
  chex.assert_shape(logvar, (1,))
  t = model_lib.elbo_terms(p, jnp.ones((28, 28, 1)), jax.random.key(1), model=m)
  chex.assert_shape(t["kl_per_dim"], (6,))
  assert np.isfinite(float(t["elbo"]))


def test_conv_architecture_shapes():
  m = model_lib.make_model(architecture="conv", data_shape=(64, 64, 1), latent_dim=10)
  p = model_lib.init_params(jax.random.key(0), m)
  # Shapes by tracing alone (the ELBO below compiles the whole model once).
  mean, logvar = jax.eval_shape(lambda p, x: model_lib.encode(p, x, model=m), p,
                                jnp.zeros((64, 64, 1)))
  assert mean.shape == logvar.shape == (10,)
  assert jax.eval_shape(lambda p, z: model_lib.decode(p, z, model=m), p,
                        jnp.zeros(10)).shape == (64, 64, 1)
  conv_shapes = {k: v["kernel"].shape for k, v in p["encoder"].items() if k.startswith("conv")}
  assert [s[-1] for s in conv_shapes.values()] == [32, 32, 64, 64]
  assert p["decoder"]["fc_1"]["kernel"].shape == (256, 1024)
  x = jnp.zeros((3, 64, 64, 1))
  e = jax.jit(jax.vmap(lambda xi, k: model_lib.elbo(p, xi, k, model=m)))(
      x, jax.random.split(jax.random.key(0), 3))
  chex.assert_shape(e, (3,))


@pytest.mark.parametrize("kwargs,match", [
    (dict(latent_dim=0), "latent_dim must be a positive integer"),
    (dict(likelihood="poisson"), "likelihood must be one of"),
    (dict(posterior="full"), "posterior must be"),
    (dict(architecture="rnn"), "architecture must be"),
    (dict(architecture="conv"), "conv architecture expects data_shape"),
    (dict(activation="swish2"), "activation must be one of"),
])
def test_make_model_rejects_bad_values(kwargs, match):
  base = dict(architecture="mlp", data_shape=(28, 28, 1), latent_dim=4)
  base.update(kwargs)
  with pytest.raises(ValueError, match=match):
    model_lib.make_model(**base)


@pytest.mark.parametrize("arch,shape", [
    ("mlp", (28, 28, 1)),
    pytest.param("conv", (64, 64, 1), marks=pytest.mark.slow)])   # ~10 s compiling
def test_bfloat16_compute_keeps_float32_params_and_close_values(arch, shape):
  kw = dict(architecture=arch, data_shape=shape, latent_dim=6, encoder_hidden=(32,),
            decoder_hidden=(32,))
  m32 = model_lib.make_model(**kw)
  m16 = model_lib.make_model(compute_dtype="bfloat16", **kw)
  p = model_lib.init_params(jax.random.key(0), m16)
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(p))
  x = (jax.random.uniform(jax.random.key(1), shape) > 0.5).astype(jnp.float32)
  mean16, lv16 = jax.jit(lambda p, x: model_lib.encode(p, x, model=m16))(p, x)
  mean32, _ = jax.jit(lambda p, x: model_lib.encode(p, x, model=m32))(p, x)
  assert mean16.dtype == jnp.float32 and lv16.dtype == jnp.float32
  np.testing.assert_allclose(mean16, mean32, atol=0.05)
  e16 = jax.jit(lambda p: model_lib.elbo(p, x, jax.random.key(2), model=m16))(p)
  e32 = jax.jit(lambda p: model_lib.elbo(p, x, jax.random.key(2), model=m32))(p)
  assert abs(float(e16 - e32)) < 0.02 * abs(float(e32))
  g = jax.jit(jax.grad(lambda q: model_lib.elbo(q, x, jax.random.key(2), model=m16)))(p)
  assert all(v.dtype == jnp.float32 and np.all(np.isfinite(v)) for v in jax.tree.leaves(g))
  with pytest.raises(ValueError, match="compute_dtype must be"):
    model_lib.make_model(compute_dtype="float16", **kw)


# ------------------------------------------------------ shapes named in errors
def _raises_naming(fn, *shapes):
  with pytest.raises(ValueError) as e:
    fn()
  for s in shapes:
    assert str(s) in str(e.value), (s, str(e.value))
  return str(e.value)


def test_a_missing_channel_axis_is_an_error_not_a_28x_elbo(tiny_model, tiny_params):
  # Before: a (28, 28) image broadcast against (28, 28, 1) logits and the ELBO
  # came out 28 times too large, silently.
  key = jax.random.key(0)
  x = jnp.zeros((28, 28))
  msg = _raises_naming(lambda: model_lib.elbo(tiny_params, x, key, model=tiny_model),
                       (28, 28, 1), (28, 28))
  assert "channel" in msg
  # Also under jit (the check runs at trace time) and for encode.
  _raises_naming(lambda: jax.jit(model_lib.elbo, static_argnames="model")(
      tiny_params, x, key, model=tiny_model), (28, 28, 1), (28, 28))
  _raises_naming(lambda: model_lib.encode(tiny_params, x, model=tiny_model), "encode")


def test_a_batch_without_vmap_is_an_error_not_one_scalar(tiny_model, tiny_params):
  x = jnp.zeros((64, 28, 28, 1))
  msg = _raises_naming(lambda: model_lib.elbo(tiny_params, x, jax.random.key(0),
                                              model=tiny_model), (64, 28, 28, 1))
  assert "vmap" in msg
  _raises_naming(lambda: model_lib.encode(tiny_params, x, model=tiny_model), "encode")


def test_decode_checks_the_latent_size(tiny_model, tiny_params):
  _raises_naming(lambda: model_lib.decode(tiny_params, jnp.zeros(5), model=tiny_model),
                 "decode", "(5,)", "4")
  _raises_naming(lambda: model_lib.decode_batch(tiny_params, jnp.zeros(4),
                                                model=tiny_model), "decode_batch")


def test_every_objective_checks_its_batch_shape(tiny_model, tiny_params):
  from vae import objectives
  one_example = jnp.zeros((28, 28, 1))
  no_channel = jnp.zeros((8, 28, 28))
  from vae import posteriors
  family_hparams = {"vq": {"code_dim": 2}, "joint": {"num_categories": 2}}
  for name, record in objectives.REGISTRY.items():
    model, params = tiny_model, tiny_params
    if record.posterior_family:        # JointVAE's and the VQ-VAE's own codes
      model = dataclasses.replace(tiny_model, posterior=posteriors.make(
          record.posterior_family, **family_hparams[record.posterior_family]))
      params = model_lib.init_params(jax.random.key(2), model)
    params = {**params, **record.bind().init_extra_params(jax.random.key(1), model)}
    loss = record.bind()
    for bad in (one_example, no_channel):
      with pytest.raises(ValueError, match=r"\[B, 28, 28, 1\]") as e:
        loss(params, bad, jax.random.key(0), model=model, step=0)
      assert str(bad.shape) in str(e.value), (name, str(e.value))


def test_bernoulli_likelihood_says_it_accepts_zero_to_one(tiny_model, tiny_params):
  from vae import distributions as dist
  x255 = jnp.full((28, 28, 1), 255.0)
  # Before: +1465 nats, a "log-probability" above zero.
  with pytest.raises(ValueError, match=r"\[0, 1\].*got values in \[255"):
    model_lib.elbo(tiny_params, x255, jax.random.key(0), model=tiny_model)
  # Under jit no value can be checked at trace time: the result is NaN, never a number.
  jitted = jax.jit(model_lib.elbo, static_argnames="model")(
      tiny_params, x255, jax.random.key(0), model=tiny_model)
  assert np.isnan(float(jitted))
  # [0, 1] targets (cross-entropy) stay accepted and finite.
  half = jax.jit(model_lib.elbo, static_argnames="model")(
      tiny_params, jnp.full((28, 28, 1), 0.5), jax.random.key(0), model=tiny_model)
  assert np.isfinite(float(half)) and float(half) < 0
  with pytest.raises(ValueError, match="same shape"):
    dist.bernoulli_log_prob(jnp.zeros((28, 28)), jnp.zeros((28, 28, 1)))
  with pytest.raises(ValueError, match="same shape"):
    dist.gaussian_likelihood_log_prob(jnp.zeros((28, 28)), jnp.zeros((28, 28, 1)))


def test_the_right_shapes_still_give_the_readme_numbers(tiny_model, tiny_params):
  # The checks change no value: a correct call equals log p(x|z) - KL by hand.
  x = jnp.zeros((28, 28, 1))
  key = jax.random.key(0)
  mean, logvar = model_lib.encode(tiny_params, x, model=tiny_model)
  z = model_lib.reparameterize(key, mean, logvar)
  logits = model_lib.decode(tiny_params, z, model=tiny_model)
  by_hand = (jnp.sum(jax.nn.log_sigmoid(logits) - logits)
             - 0.5 * jnp.sum(jnp.exp(logvar) + mean ** 2 - 1 - logvar))
  np.testing.assert_allclose(model_lib.elbo(tiny_params, x, key, model=tiny_model),
                             by_hand, rtol=1e-5)
