"""Evaluation against known answers: a linear-Gaussian model has exact log p(x)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import evaluate as ev
from vae import model as model_lib
from vae.objectives import batch_elbo_terms


@pytest.fixture(scope="module")
def linear_gaussian():
  """p(z) = N(0, I_2), p(x|z) = N(Wz + b, sigma^2 I_3): log p(x) is
  log N(x; b, W W^T + sigma^2 I) exactly (the decoder has no hidden layer)."""
  obs_logvar = np.log(0.3)
  m = model_lib.make_model(architecture="mlp", data_shape=(3,), latent_dim=2,
                           likelihood="gaussian", obs_logvar=obs_logvar,
                           encoder_hidden=(8,), decoder_hidden=())
  p = model_lib.init_params(jax.random.key(0), m)
  w = np.asarray(p["decoder"]["out"]["kernel"], np.float64)   # [2, 3]
  b = np.asarray(p["decoder"]["out"]["bias"], np.float64)
  cov = w.T @ w + np.exp(obs_logvar) * np.eye(3)
  # Points drawn from the model, so that the untrained q (close to the prior)
  # is a usable proposal; far outliers would need far more samples.
  x = np.random.default_rng(1).multivariate_normal(b, cov, size=40).astype(np.float32)
  diff = x - b
  exact = -0.5 * (3 * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1]
                  + np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff))
  return m, p, x, exact


@pytest.mark.parametrize("chunk_size", [3000, 20000])  # 3000 does not divide k
def test_iwae_estimate_converges_to_exact_log_likelihood(linear_gaussian, chunk_size):
  m, p, x, exact = linear_gaussian
  r = ev.iwae_log_likelihood(p, x, jax.random.key(2), model=m, num_samples=20000,
                             batch_size=16, chunk_size=chunk_size, return_per_example=True)
  assert r["per_example"].shape == (40,)
  # Importance-sampling error at k = 20000 is ~0.02 nats per point here.
  np.testing.assert_allclose(r["per_example"], exact, atol=0.08)
  np.testing.assert_allclose(r["log_likelihood"], exact.mean(), atol=0.02)
  elbo = ev.dataset_elbo(p, x, jax.random.key(3), model=m, batch_size=16)["elbo"]
  assert elbo < exact.mean() - 0.05  # an untrained q: the ELBO is strictly looser


def test_iwae_chunking_masks_the_padding(linear_gaussian):
  """k = 7 in chunks of 5: the 3 padded samples of the 2nd chunk must not count."""
  m, p, x, _ = linear_gaussian
  k7 = ev.iwae_log_likelihood(p, x, jax.random.key(4), model=m, num_samples=7,
                              chunk_size=5, return_per_example=True)["per_example"]
  # Same draws by hand: chunk c uses fold_in(example key, c).
  keys = jax.random.split(jax.random.fold_in(jax.random.key(4), 0), 16)
  from vae import distributions as dist

  def by_hand(xi, k):
    mean, logvar = model_lib.encode(p, xi, model=m)
    z = jnp.concatenate([model_lib.reparameterize(jax.random.fold_in(k, c), mean, logvar, 5)
                         for c in range(2)])[:7]
    lw = jax.vmap(lambda zz: model_lib.log_likelihood(
        xi, model_lib.decode(p, zz, model=m), model=m)
        + dist.standard_normal_log_prob(zz) - dist.gaussian_log_prob(zz, mean, logvar))(z)
    return jax.nn.logsumexp(lw) - np.log(7)

  expect = jax.vmap(by_hand)(jnp.asarray(x[:16]), keys)
  np.testing.assert_allclose(k7[:16], expect, rtol=1e-5, atol=1e-4)


def test_dataset_elbo_equals_batch_mean(tiny_model, tiny_params, binary_images):
  x = binary_images[:250]
  r = ev.dataset_elbo(tiny_params, x, jax.random.key(0), model=tiny_model, batch_size=100)
  # Recompute with the same per-batch keys (the last batch is padded to 100).
  parts = []
  for i in range(3):
    b = np.zeros((100, 28, 28, 1), np.float32)
    chunk = x[i * 100:(i + 1) * 100]
    b[:len(chunk)] = chunk
    t = batch_elbo_terms(tiny_params, jnp.asarray(b), jax.random.fold_in(jax.random.key(0), i),
                         model=tiny_model)
    parts.append(np.asarray(t["elbo"])[:len(chunk)])
  np.testing.assert_allclose(r["elbo"], np.concatenate(parts).mean(), rtol=1e-5)
  assert len(r["kl_per_dim"]) == 4
  np.testing.assert_allclose(sum(r["kl_per_dim"]), r["kl"], rtol=1e-4)


def test_active_units_counts_dimensions_that_move(tiny_model, tiny_params, binary_images):
  params = jax.tree.map(lambda a: a, tiny_params)
  head = dict(params["encoder"]["head"]["mean"])
  kernel = np.array(head["kernel"])
  kernel[:, 1] = 0.0  # dims 1 and 3 ignore the input: Cov_x E[z_i] = 0
  kernel[:, 3] = 0.0
  kernel[:, 0] *= 50.0  # dim 0 moves a lot
  head["kernel"] = jnp.asarray(kernel)
  params["encoder"] = dict(params["encoder"])
  params["encoder"]["head"] = dict(params["encoder"]["head"])
  params["encoder"]["head"]["mean"] = head
  r = ev.active_units(params, binary_images, model=tiny_model)
  assert r["activity"][1] == pytest.approx(0.0, abs=1e-10)
  assert r["activity"][3] == pytest.approx(0.0, abs=1e-10)
  assert r["activity"][0] > 0.01
  assert r["active_units"] == sum(a > 0.01 for a in r["activity"])
  assert r["active_units"] <= 2


def test_k_below_one_is_rejected(tiny_model, tiny_params, binary_images):
  with pytest.raises(ValueError, match=r"num_samples \(k\) must be >= 1"):
    ev.iwae_log_likelihood(tiny_params, binary_images[:2], jax.random.key(0),
                           model=tiny_model, num_samples=0)


@pytest.mark.slow
def test_evaluation_and_training_show_progress(tiny_model, tiny_params, binary_images, capsys,
                                                smoke_config, tmp_path):
  # The k = 5000 evaluation runs for many minutes: it must show progress.
  from vae import evaluate as ev_lib
  x = np.asarray(binary_images[:30])
  ev_lib.iwae_log_likelihood(tiny_params, x, jax.random.key(0), model=tiny_model,
                             num_samples=4, batch_size=10, chunk_size=2, progress=True)
  err = capsys.readouterr().err
  assert "IWAE k=4" in err and "30/30" in err and "ex/s" in err, err
  ev_lib.iwae_log_likelihood(tiny_params, x, jax.random.key(0), model=tiny_model,
                             num_samples=4, batch_size=10, chunk_size=2)
  assert capsys.readouterr().err == ""                  # off by default in the library
  from experiments import job as job_lib
  smoke_config.num_steps = 50
  job_lib.train(smoke_config, str(tmp_path / "run"), progress=True)
  err = capsys.readouterr().err
  assert "compiling" in err and "50/50" in err, err     # the bar is up before compilation ends


def test_new_params_compile_nothing(tiny_model, tiny_params, binary_images, caplog):
  """The per-batch programs take the parameters as an argument: evaluating
  other parameters of the same model (each periodic evaluation) reuses them."""
  x = binary_images[:30]                    # 2 batches of 16, the last one partial
  other = jax.tree.map(lambda a: a * 0.5, tiny_params)
  keys = jax.random.key(0), jax.random.key(1)

  def evaluate(params, key):
    return (ev.dataset_reconstruction(params, x, model=tiny_model, batch_size=16),
            ev.dataset_elbo(params, x, key, model=tiny_model, batch_size=16)["elbo"])

  first = evaluate(tiny_params, keys[0])
  sizes = ev._reconstruction_batch._cache_size(), ev._elbo_batch._cache_size()
  with jax.log_compiles(), caplog.at_level("WARNING"):
    second = evaluate(other, keys[1])
  assert not [r for r in caplog.records if "Compiling" in r.getMessage()], caplog.text
  assert (ev._reconstruction_batch._cache_size(), ev._elbo_batch._cache_size()) == sizes
  assert first[0] != second[0] and first[1] != second[1]     # the new params were used
