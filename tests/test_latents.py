"""Posterior families and priors as parts of ``Model`` (vae/posteriors,
vae/priors): the Gaussian and N(0, I) keep the closed-form numbers bit for
bit, each new piece is checked against a closed form or a known limit."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import distributions as dist
from vae import model as model_lib
from vae import objectives, posteriors
from vae import priors as priors_lib
from vae.posteriors import planar as planar_lib

D = 4


def _model(**kw):
  return model_lib.make_model(architecture="mlp", data_shape=(6, 6, 1), latent_dim=D,
                              encoder_hidden=(16,), decoder_hidden=(16,), **kw)


def _batch(n=8, seed=1):
  return (jax.random.uniform(jax.random.key(seed), (n, 6, 6, 1)) > 0.5).astype(jnp.float32)


def test_the_gaussian_and_standard_normal_give_the_closed_form_numbers_bit_for_bit():
  m = _model()
  assert m.closed_form_kl and m.posterior == posteriors.Gaussian()
  p = model_lib.init_params(jax.random.key(0), m)
  assert set(p) == {"encoder", "decoder"}          # no new parameters, same checkpoints
  x, key = _batch(), jax.random.key(3)
  t = jax.jit(lambda p: model_lib.batch_elbo_terms(p, x, key, model=m))(p)

  def before(p):     # the code these functions replaced, written out
    keys = jax.random.split(key, x.shape[0])
    mean, logvar = model_lib.encode_batch(p, x, model=m)
    z = jax.vmap(model_lib.reparameterize)(keys, mean, logvar)
    out = model_lib.decode_batch(p, z, model=m)
    ll = jax.vmap(lambda xx, o: model_lib.log_likelihood(xx, o, model=m))(x, out)
    kl = jnp.sum(jax.vmap(dist.kl_to_standard_normal_per_dim)(mean, logvar), axis=-1)
    return ll - kl

  np.testing.assert_array_equal(np.asarray(t["elbo"]), np.asarray(jax.jit(before)(p)))
  # The evaluated ELBO draws the same z (only a relaxed code differs there).
  t_eval = jax.jit(lambda p: model_lib.batch_elbo_terms(p, x, key, model=m, evaluation=True))(p)
  np.testing.assert_array_equal(np.asarray(t_eval["elbo"]), np.asarray(t["elbo"]))

  def before_weights(p, xx, k):
    mean, logvar = model_lib.encode(p, xx, model=m)
    z = model_lib.reparameterize(k, mean, logvar, 7)
    out = model_lib.decode(p, z, model=m)
    return (jax.vmap(lambda o: model_lib.log_likelihood(xx, o, model=m))(out)
            + jax.vmap(dist.standard_normal_log_prob)(z)
            - jax.vmap(lambda zz: dist.gaussian_log_prob(zz, mean, logvar))(z))

  now = jax.jit(lambda p: model_lib.log_importance_weights(p, x[0], key, 7, model=m)[0])(p)
  np.testing.assert_array_equal(np.asarray(now),
                                np.asarray(jax.jit(before_weights)(p, x[0], key)))


def test_planar_log_determinant_equals_the_jacobians():
  fam = posteriors.make("planar", num_flows=3)
  params = fam.init_params(jax.random.key(0), D)
  params = {"bias": params["bias"] * 30.0, "kernel": params["kernel"]}   # far from identity
  mean, logvar = jnp.arange(D) / 4.0, -jnp.ones(D)
  u_hat, w, b = fam.flow_parameters(mean, logvar, params)
  # Rezende & Mohamed (2015), App. A.1: w^T u_hat >= -1 keeps each map invertible.
  assert np.all(np.sum(np.asarray(w * u_hat), -1) >= -1)
  z0 = jax.random.normal(jax.random.key(1), (D,))
  f = lambda z: planar_lib.flow(z, u_hat, w, b)[0]
  _, log_det = planar_lib.flow(z0, u_hat, w, b)
  sign, want = np.linalg.slogdet(np.asarray(jax.jacfwd(f)(z0), np.float64))
  assert sign > 0 and abs(float(log_det) - want) < 1e-4
  # log q_K(z_K) = log q_0(z_0) - log det: the sample's density, by change of variables.
  key = jax.random.key(2)
  z, log_q = fam.sample(key, mean, logvar, params)
  z0 = dist.reparameterized_sample(key, mean, logvar)
  np.testing.assert_allclose(z, f(z0), rtol=1e-6)
  np.testing.assert_allclose(log_q, dist.gaussian_log_prob(z0, mean, logvar)
                             - planar_lib.flow(z0, u_hat, w, b)[1], rtol=1e-6)
  with pytest.raises(ValueError, match="num_flows must be an integer >= 1"):
    posteriors.make("planar", num_flows=0)


def test_the_monte_carlo_kl_of_a_flow_at_identity_equals_the_closed_form():
  m = _model(posterior_family="planar", posterior_hparams={"num_flows": 2})
  p = model_lib.init_params(jax.random.key(0), m)
  p["posterior"] = jax.tree.map(jnp.zeros_like, p["posterior"])     # u = 0: f is identity
  _assert_mc_kl_is_the_closed_form(m, p)


def _assert_mc_kl_is_the_closed_form(m, p):
  """The mean of 20,000 one-sample KL estimates of 4 examples is within 4
  standard errors of KL(q(z|x) || N(0, I)) in closed form."""
  x = _batch(4)
  keys = jax.random.split(jax.random.key(5), 20000)
  mc = jax.jit(jax.vmap(lambda k: model_lib.batch_elbo_terms(p, x, k, model=m)["kl"]))(keys)
  mean, logvar = model_lib.encode_batch(p, x, model=m)
  closed = jax.vmap(dist.kl_to_standard_normal)(mean, logvar)
  se = np.std(np.asarray(mc), 0) / np.sqrt(len(keys))
  assert np.all(np.abs(np.mean(np.asarray(mc), 0) - np.asarray(closed)) < 4 * se + 1e-4)


@pytest.mark.slow
def test_vampprior_is_the_mixture_of_posteriors_at_its_pseudo_inputs():
  m = _model(prior="vampprior", prior_hparams={"num_components": 3})
  p = model_lib.init_params(jax.random.key(0), m)
  u = np.asarray(_batch(3, seed=7))
  p["prior"] = {"pseudo_inputs": jnp.asarray(u)}
  z = jax.random.normal(jax.random.key(1), (D,))
  got = model_lib.prior_log_prob(p, model=m)(z)
  comps = [float(dist.gaussian_log_prob(z, *model_lib.encode(p, jnp.asarray(ui), model=m)))
           for ui in u]
  want = np.logaddexp.reduce(np.asarray(comps, np.float64)) - np.log(3)
  assert abs(float(got) - want) < 1e-4
  # A known limit: one component whose pseudo-input is x itself makes p(z) = q(z|x),
  # so the KL estimate is exactly 0 whatever z was drawn.
  m1 = _model(prior="vampprior", prior_hparams={"num_components": 1})
  p1 = dict(p, prior={"pseudo_inputs": jnp.asarray(u[:1])})
  t = model_lib.batch_elbo_terms(p1, jnp.asarray(u[:1]), jax.random.key(2), model=m1)
  assert abs(float(t["kl"][0])) < 1e-5
  # Its samples come from the mixture: their mean is the components' mean.
  draws = model_lib.sample_prior(p, jax.random.key(3), 20000, model=m)
  means = np.mean([np.asarray(model_lib.encode(p, jnp.asarray(ui), model=m)[0]) for ui in u], 0)
  np.testing.assert_allclose(np.mean(np.asarray(draws), 0), means, atol=0.05)
  # The pseudo-inputs learn: the loss has a gradient with respect to them.
  g = jax.grad(lambda q: objectives.get_objective("vae")(q, _batch(), jax.random.key(4),
                                                          model=m)[0])(p)
  assert float(jnp.max(jnp.abs(g["prior"]["pseudo_inputs"]))) > 0


@pytest.mark.slow   # ~10 s: compiles the IWAE of a flow with a VampPrior
def test_iwae_with_a_flow_and_a_vampprior_bounds_log_p_above_the_elbo():
  m = _model(posterior_family="planar", prior="vampprior", prior_hparams={"num_components": 5})
  p = model_lib.init_params(jax.random.key(0), m)
  x = _batch(16)
  elbo = float(jnp.mean(model_lib.batch_elbo_terms(p, x, jax.random.key(1), model=m)["elbo"]))
  _, aux = objectives.get_objective("iwae", num_samples=50)(p, x, jax.random.key(1), model=m)
  assert float(aux["iwae_bound"]) > elbo                      # Burda et al. (2016), Theorem 1


def test_objectives_whose_estimator_needs_the_gaussian_refuse_other_families():
  m = _model(posterior_family="planar")
  p = model_lib.init_params(jax.random.key(0), m)
  for name in ("beta_tcvae", "dip_vae_i", "dip_vae_ii"):
    with pytest.raises(ValueError, match=f"objective '{name}'.*'planar' posterior"):
      objectives.get_objective(name)(p, _batch(), jax.random.key(1), model=m)
  for name in ("vae", "annealed_vae"):                 # these need only samples (and iwae)
    loss, _ = objectives.get_objective(name)(p, _batch(), jax.random.key(1), model=m)
    assert np.isfinite(float(loss))


def test_unknown_families_priors_and_hyperparameters_are_refused_naming_them():
  with pytest.raises(ValueError, match="posterior family must be one of"):
    _model(posterior_family="realnvp")
  with pytest.raises(ValueError, match="prior must be one of"):
    _model(prior="mog")
  with pytest.raises(ValueError, match=r"no hyperparameter\(s\) \['k'\]"):
    _model(prior="vampprior", prior_hparams={"k": 3})
  m = _model(posterior_family="planar", prior="vampprior")
  hash(m)                                              # a static argument of jit
  assert dataclasses.replace(m) == m


@pytest.mark.slow   # ~20 s: three short trainings through the experiment layer
def test_a_flow_with_a_vampprior_trains_evaluates_and_resumes_from_its_config(smoke_config,
                                                                              tmp_path):
  import json
  import os

  from experiments import job as job_lib
  smoke_config.model.posterior_family = "planar"
  smoke_config.model.posterior_hparams.planar.num_flows = 2
  smoke_config.model.prior = "vampprior"
  smoke_config.model.prior_hparams.vampprior.num_components = 10
  smoke_config.objective = "info_vae"
  smoke_config.num_steps = 100
  wd = str(tmp_path / "run")
  res = job_lib.train_and_evaluate(smoke_config, wd)
  assert res["iwae"]["log_likelihood"] >= res["elbo"]["elbo"] - 1.0
  # The KL decomposition assumes N(0, I) and a Gaussian q: left out, the rest kept.
  assert "mutual_info_mss" not in res["diagnostics"] and "active_units" in res["diagnostics"]
  assert os.path.exists(os.path.join(wd, "prior_samples.png"))
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  assert all(np.isfinite(r["mmd"]) for r in rows if r["split"] == "train")
  smoke_config.num_steps = 150                 # resumes: the extra parameters are checkpointed
  assert job_lib.train_and_evaluate(smoke_config, wd)["step"] == 150
  # A family an objective cannot train is refused with the config, before any data.
  smoke_config.objective = "beta_tcvae"
  with pytest.raises(ValueError, match="objective 'beta_tcvae'.*'planar' posterior"):
    job_lib.check_config(smoke_config)
  smoke_config.objective = "vae"
  smoke_config.model.prior_hparams.vampprior.num_componets = 3
  with pytest.raises(ValueError, match="model.prior_hparams.vampprior: .*num_componets"):
    job_lib.check_config(smoke_config)


def test_iaf_is_autoregressive_and_its_log_determinant_equals_the_jacobians():
  from vae.posteriors import iaf as iaf_lib
  fam = posteriors.make("iaf", num_steps=3, hidden=12)
  params = fam.init_params(jax.random.key(0), D)
  params = jax.tree.map(lambda a: a * 4.0 if a.ndim == 3 else a, params)    # away from identity
  mean, logvar = jnp.arange(D) / 4.0, -jnp.ones(D)
  context = jnp.concatenate([mean, logvar])
  f = lambda z: iaf_lib.flow(z, context, params, *fam.masks(D))[0]
  z0 = jax.random.normal(jax.random.key(1), (D,))
  jac = np.asarray(jax.jacfwd(f)(z0), np.float64)
  sign, want = np.linalg.slogdet(jac)
  got = float(iaf_lib.flow(z0, context, params, *fam.masks(D))[1])
  assert sign > 0 and abs(got - want) < 1e-4
  # One step is triangular (output i sees inputs before i only): Germain et al. (2015).
  one = posteriors.make("iaf", num_steps=1, hidden=12)
  p1 = jax.tree.map(lambda a: a * 40.0 if a.ndim == 3 else a, one.init_params(jax.random.key(2), D))
  j1 = np.asarray(jax.jacfwd(lambda z: iaf_lib.flow(z, context, p1, *one.masks(D))[0])(z0))
  assert np.allclose(np.triu(j1, 1), 0) and np.abs(np.tril(j1, -1)).max() > 1e-3
  key = jax.random.key(3)
  z, log_q = fam.sample(key, mean, logvar, params)
  z0 = dist.reparameterized_sample(key, mean, logvar)
  np.testing.assert_allclose(z, f(z0), rtol=1e-5)
  np.testing.assert_allclose(log_q, dist.gaussian_log_prob(z0, mean, logvar)
                             - iaf_lib.flow(z0, context, params, *fam.masks(D))[1], rtol=1e-5)


def test_joint_code_kl_and_gumbel_softmax_samples():
  fam = posteriors.make("joint", num_categories=3, temperature=0.05)
  logits = jnp.array([1.0, -0.5, 0.2])
  mean = jnp.concatenate([jnp.array([0.3, -1.0]), logits])
  logvar = jnp.array([-0.5, 0.1, 9.0, 9.0, 9.0])               # the logits' logvars: unused
  per = np.asarray(fam.kl_per_dim(mean, logvar))
  a = np.exp(logits) / np.exp(logits).sum()
  np.testing.assert_allclose(per[2:].sum(), np.sum(a * np.log(3 * a)), rtol=1e-5)
  np.testing.assert_allclose(per[:2], dist.kl_to_standard_normal_per_dim(mean[:2], logvar[:2]),
                             rtol=1e-6)
  assert abs(float(fam.kl_per_dim(jnp.zeros(5), jnp.zeros(5))[2:].sum())) < 1e-7  # uniform q(c|x)
  # At a low temperature the relaxed one-hot picks category k with probability a_k.
  z, log_q = fam.sample(jax.random.key(0), mean, logvar, None, num_samples=20000)
  assert log_q is None and z.shape == (20000, 5)
  freq = np.bincount(np.argmax(np.asarray(z[:, 2:]), -1), minlength=3) / 20000
  np.testing.assert_allclose(freq, a, atol=0.015)
  np.testing.assert_allclose(np.asarray(z[:, 2:]).sum(-1), 1.0, rtol=1e-5)


def test_the_joint_vaes_evaluated_elbo_decodes_its_category_and_is_the_models_elbo():
  # Training decodes a relaxed category; the model decodes a category, and its
  # ELBO is sum_c q(c|x) E_q(z|x) log p(x|z, c) - KL. The evaluation draws the
  # category by Gumbel-max (the relaxed draw's argmax) and decodes it.
  m = _model(posterior_family="joint", posterior_hparams={"num_categories": 2})
  p = model_lib.init_params(jax.random.key(0), m)
  n, key = 4096, jax.random.key(1)
  x = jnp.repeat(_batch(1), n, axis=0)
  t = model_lib.batch_elbo_terms(p, x, key, model=m, evaluation=True)
  relaxed = model_lib.batch_elbo_terms(p, x, key, model=m)
  c = np.asarray(t["z"][:, -2:])
  assert set(np.unique(c)) == {0.0, 1.0} and np.all(c.sum(-1) == 1.0)
  cat = np.argmax(c, -1)
  np.testing.assert_array_equal(cat, np.argmax(np.asarray(relaxed["z"][:, -2:]), -1))
  np.testing.assert_array_equal(t["z"][:, :-2], relaxed["z"][:, :-2])
  np.testing.assert_array_equal(t["kl"], relaxed["kl"])
  a = np.asarray(jax.nn.softmax(model_lib.encode(p, x[0], model=m)[0][-2:]))
  np.testing.assert_allclose(np.bincount(cat, minlength=2) / n, a, atol=0.025)   # ~ q(c|x)
  def log_lik(z):
    out = model_lib.decode_batch(p, z, model=m)
    return np.asarray(jax.vmap(lambda xi, o: model_lib.log_likelihood(xi, o, model=m))(x, out))
  by_category = np.stack([log_lik(jnp.concatenate([t["z"][:, :-2], jnp.tile(jnp.eye(2)[k], (n, 1))],
                                                  -1)) for k in range(2)], -1)
  # Each draw's reconstruction term is its category's, not the relaxed code's.
  np.testing.assert_allclose(np.asarray(t["log_likelihood"]), by_category[np.arange(n), cat],
                             rtol=1e-5)
  assert np.max(np.abs(np.asarray(relaxed["log_likelihood"]) - by_category[np.arange(n), cat])) > 0.1
  # dataset_elbo evaluates this ELBO.
  from vae import evaluate
  r = evaluate.dataset_elbo(p, np.asarray(x[:8]), key, model=m, batch_size=8)
  got = model_lib.batch_elbo_terms(p, x[:8], jax.random.fold_in(key, 0), model=m, evaluation=True)
  np.testing.assert_allclose(r["elbo"], float(np.mean(got["elbo"])), rtol=1e-5)


def test_the_joint_codes_information_is_the_mutual_information_of_the_batch():
  fam = posteriors.make("joint", num_categories=3)
  cont = jnp.zeros((6, 2))
  def info(logits):
    mean = jnp.concatenate([cont, jnp.asarray(logits, jnp.float32)], axis=-1)
    return float(fam.code_information(mean, jnp.zeros_like(mean)))
  # A collapsed code: one confident category for every example meets
  # KL(q(c|x) || U(3)) near log 3 and carries nothing.
  same = np.tile([20.0, 0.0, 0.0], (6, 1))
  assert abs(info(same)) < 1e-6
  # Each example a confident category, the three used equally: log 3.
  np.testing.assert_allclose(info(np.repeat(20.0 * np.eye(3), 2, axis=0)), np.log(3), rtol=1e-6)
  # Any batch: I(x; c) of the joint distribution p(x_b, c) = q(c|x_b) / B.
  logits = np.random.default_rng(0).normal(size=(6, 3)) * 2
  a = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  joint = a / 6
  mi = np.sum(joint * np.log(joint / (joint.sum(1, keepdims=True) * joint.sum(0, keepdims=True))))
  np.testing.assert_allclose(info(logits), mi, rtol=1e-5)


def test_joint_vae_trains_only_the_joint_code_and_refuses_what_it_cannot_give():
  m = _model(posterior_family="joint", posterior_hparams={"num_categories": 2})
  p = model_lib.init_params(jax.random.key(0), m)
  x, key = _batch(), jax.random.key(1)
  loss, aux = objectives.get_objective("joint_vae", gamma=0.0)(p, x, key, model=m, step=10)
  assert float(loss) == -float(aux["log_likelihood"])                   # gamma = 0: reconstruction
  np.testing.assert_allclose(float(aux["kl_cont"]) + float(aux["kl_disc"]), float(aux["kl"]),
                             rtol=1e-5)
  _, aux = objectives.get_objective("joint_vae", iteration_threshold=100)(p, x, key, model=m,
                                                                         step=50)
  assert float(aux["capacity_cont"]) == 20.0
  np.testing.assert_allclose(float(aux["capacity_disc"]), np.log(2) / 2, rtol=1e-6)  # at most log 2
  mean, logvar = model_lib.encode_batch(p, x, model=m)
  np.testing.assert_allclose(float(aux["code_information"]),
                             float(m.posterior.code_information(mean, logvar)), rtol=1e-6)
  with pytest.raises(ValueError, match="trains the 'joint' posterior family"):
    objectives.get_objective("joint_vae")(p, x, key, model=_model(), step=1)
  with pytest.raises(ValueError, match="need log q"):
    objectives.get_objective("iwae")(p, x, key, model=m)
  with pytest.raises(ValueError, match="prior must be 'standard_normal'"):
    _model(posterior_family="joint", prior="vampprior")


def _vq_model(**hp):
  return _model(posterior_family="vq", posterior_hparams={"num_codes": 5, "code_dim": 2, **hp})


def test_vq_quantizes_to_the_nearest_code_and_passes_gradients_straight_through():
  m = _vq_model(ema_decay=0.0)
  fam = m.posterior
  p = model_lib.init_params(jax.random.key(0), m)
  book = np.asarray(p["posterior"]["codebook"])
  z_e = jax.random.normal(jax.random.key(1), (D,)) * 0.01
  idx, _, e = fam.quantize(z_e, p["posterior"])
  want = [np.argmin(((book - np.asarray(v)) ** 2).sum(-1)) for v in np.asarray(z_e).reshape(2, 2)]
  assert list(np.asarray(idx)) == want
  z_q, _ = fam.sample(None, z_e, jnp.zeros(D), p["posterior"])
  np.testing.assert_allclose(z_q, np.asarray(e).reshape(D))
  c = jnp.arange(1.0, D + 1)
  g = jax.grad(lambda z: jnp.sum(fam.sample(None, z, jnp.zeros(D), p["posterior"])[0] * c))(z_e)
  np.testing.assert_allclose(g, c)                       # d z_q / d z_e = I (their Eq. 3)
  loss, aux = objectives.get_objective("vq_vae")(p, _batch(), jax.random.key(2), model=m)
  assert np.isfinite(float(loss)) and 1.0 <= float(aux["perplexity"]) <= 5.0
  np.testing.assert_allclose(float(aux["kl"]), 2 * np.log(5), rtol=1e-6)   # M log K
  with pytest.raises(ValueError, match="trained by the objective 'vq_vae' only"):
    objectives.get_objective("vae")(p, _batch(), jax.random.key(2), model=m)


@pytest.mark.slow
def test_the_vq_ema_step_is_the_moving_average_and_restarts_dead_codes():
  import optax
  m = _vq_model(ema_decay=0.9)
  p = model_lib.init_params(jax.random.key(0), m)
  p["posterior"]["ema_counts"] = jnp.array([3.0, 2.0, 0.001, 4.0, 1.0])
  x, key = _batch(), jax.random.key(3)
  obj = objectives.get_objective("vq_vae", dead_code_threshold=0.01)
  opt = obj.make_optimizer(optax.adam(1e-3))
  grads = jax.grad(lambda q: obj(q, x, key, model=m)[0])(p)
  updates, _ = opt.update(grads, opt.init(p), p)
  new = optax.apply_updates(p, updates)["posterior"]
  z_e, _ = model_lib.encode_batch(p, x, model=m)
  idx, z, _ = m.posterior.quantize(z_e, p["posterior"])
  hot = np.asarray(jax.nn.one_hot(idx, 5)).reshape(-1, 5)
  n, s = hot.sum(0), hot.T @ np.asarray(z).reshape(-1, 2)
  live = np.array([True, True, False, True, True])
  old_n, old_s = np.asarray(p["posterior"]["ema_counts"]), np.asarray(p["posterior"]["ema_sums"])
  np.testing.assert_allclose(np.asarray(new["ema_counts"])[live],
                             (0.9 * old_n + 0.1 * n)[live], rtol=1e-5)
  np.testing.assert_allclose(np.asarray(new["ema_sums"])[live],
                             (0.9 * old_s + 0.1 * s)[live], rtol=1e-4, atol=1e-7)
  # The dead code restarts at one of the batch's encoder outputs, with count 1.
  assert abs(float(new["ema_counts"][2]) - 1.0) < 1e-6
  rows = np.asarray(z).reshape(-1, 2)
  assert np.min(np.abs(rows - np.asarray(new["ema_sums"][2])).sum(-1)) < 1e-5
  _, aux = obj(p, x, key, model=m)
  assert float(aux["codes_restarted"]) == 1.0
  # Above 1, a code restarts at the threshold itself: at count 1 it would be
  # dead again next step unless it won (2.5 - 0.9) / 0.1 = 16 assignments.
  obj = objectives.get_objective("vq_vae", dead_code_threshold=2.5)
  opt = obj.make_optimizer(optax.adam(1e-3))
  grads = jax.grad(lambda q: obj(q, x, key, model=m)[0])(p)
  updates, _ = opt.update(grads, opt.init(p), p)
  new = optax.apply_updates(p, updates)["posterior"]
  dead = np.array([False, True, True, False, True])            # counts 2, 0.001, 1 < 2.5
  np.testing.assert_allclose(np.asarray(new["ema_counts"])[dead], 2.5, rtol=1e-6)
  for k in np.flatnonzero(dead):                   # the code vector is an encoder output
    assert np.min(np.abs(rows - np.asarray(new["ema_sums"][k]) / 2.5).sum(-1)) < 1e-5
  assert float(obj(p, x, key, model=m)[1]["codes_restarted"]) == 3.0


def test_category_recovery_scores_a_perfect_code_1_and_an_unrelated_one_chance():
  from vae.metrics import discrete
  rng = np.random.default_rng(0)
  shape = rng.integers(0, 3, 30000)
  perm = np.array([2, 0, 1])[shape]                      # each category one shape, relabelled
  r = discrete.category_recovery(perm, shape)
  assert r["accuracy"] == 1.0 and abs(r["nmi"] - 1.0) < 1e-12
  r = discrete.category_recovery(rng.integers(0, 3, 30000), shape)
  assert abs(r["accuracy"] - 1 / 3) < 0.02 and r["nmi"] < 0.001
  half = np.where(rng.random(30000) < 0.5, perm, rng.integers(0, 3, 30000))
  assert 0.6 < discrete.category_recovery(half, shape)["accuracy"] < 0.7   # 1/2 + 1/2 * 1/3
  with pytest.raises(ValueError, match="one length"):
    discrete.category_recovery(shape[:5], shape)


@pytest.mark.slow
def test_two_layer_prior_estimates_log_p_z1_by_importance_sampling_its_second_layer():
  prior = priors_lib.make("two_layer", latent_dim=1, hidden=8)
  p = prior.init_params(jax.random.key(0), None, 1)
  p = jax.tree.map(lambda a: a * 2.0, p)                  # a p(z1|z2) that depends on z2
  fn = prior.log_prob_fn(p, None)
  z1 = jnp.array([0.7])
  est = jax.vmap(lambda k: fn(z1, k))(jax.random.split(jax.random.key(1), 40000))
  # p(z1) = int N(z1; mu(z2), s^2(z2)) N(z2; 0, 1) dz2 by quadrature.
  from vae.priors import two_layer
  grid = np.linspace(-8, 8, 20001)
  m, lv = two_layer._gaussian_net(p["p_z1"], jnp.asarray(grid)[:, None])
  dens = (np.exp(np.asarray(jax.vmap(lambda a, b: dist.gaussian_log_prob(z1, a, b))(m, lv)))
          * np.exp(-grid ** 2 / 2) / np.sqrt(2 * np.pi))
  exact = np.log(np.sum(dens) * (grid[1] - grid[0]))
  assert float(jnp.mean(est)) <= exact + 1e-3               # a lower bound in expectation
  lme = float(jax.nn.logsumexp(est) - np.log(est.size))    # the importance-sampled log p(z1)
  assert abs(lme - exact) < 0.01, (lme, exact)


def test_two_layers_with_the_second_switched_off_are_the_one_layer_vae():
  m = _model(prior="two_layer", prior_hparams={"latent_dim": 3, "hidden": 5})
  p = model_lib.init_params(jax.random.key(0), m)
  for net in ("p_z1", "q_z2"):                   # p(z1|z2) = N(0, I) and q(z2|z1) = N(0, I)
    p["prior"][net][-1] = jax.tree.map(jnp.zeros_like, p["prior"][net][-1])
  _assert_mc_kl_is_the_closed_form(m, p)
  draws = model_lib.sample_prior(p, jax.random.key(1), 20000, model=m)
  np.testing.assert_allclose(np.cov(np.asarray(draws).T), np.eye(D), atol=0.05)


def test_the_code_the_decoder_reads_is_the_familys_image_of_the_mean(monkeypatch):
  x = _batch(2)
  for family, hp in (("planar", {"num_flows": 2}), ("iaf", {"num_steps": 1, "hidden": 6}),
                     ("vq", {"num_codes": 5, "code_dim": 2}), ("joint", {"num_categories": 2})):
    m = _model(posterior_family=family, posterior_hparams=hp)
    p = model_lib.init_params(jax.random.key(0), m)
    p["posterior"] = jax.tree.map(lambda a: a + 0.3, p.get("posterior")) if family != "joint" \
        else None
    mean, logvar = model_lib.encode(p, x[0], model=m)
    code = model_lib.posterior_code(p, x[0], model=m)
    if family in ("planar", "iaf"):        # the flow's image of the mean: a zero-noise sample
      with monkeypatch.context() as patch:
        patch.setattr(dist, "reparameterized_sample", lambda key, mu, lv, n=None: mu)
        want = m.posterior.sample(jax.random.key(1), mean, logvar, p["posterior"])[0]
    elif family == "vq":
      want = m.posterior.sample(None, mean, logvar, p["posterior"])[0]
    else:
      want = jnp.concatenate([mean[:2], jax.nn.one_hot(jnp.argmax(mean[2:]), 2)])
    np.testing.assert_allclose(code, want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(code, mean)


def test_the_metrics_score_the_code_the_decoder_reads():
  """JointVAE's encoder mean holds raw category logits; the metrics score its
  code (continuous means and the one-hot category). The Gaussian keeps its
  mean, through the same function object."""
  from vae import evaluate, metrics
  m = _model(posterior_family="joint", posterior_hparams={"num_categories": 2})
  p = model_lib.init_params(jax.random.key(0), m)
  x = _batch()
  rep = metrics.representation_from_params(p, m)(x)
  want = jax.vmap(lambda e: model_lib.posterior_code(p, e, model=m))(x)
  np.testing.assert_array_equal(np.asarray(rep), np.asarray(want))
  assert set(np.unique(np.asarray(rep)[:, -2:])) <= {0.0, 1.0}
  g = _model()
  assert evaluate.representation_fn(g) is evaluate.posterior_mean_fn(g)


def test_a_vampprior_initialised_from_data_starts_at_training_examples(tmp_path):
  import optax

  from vae import train as train_lib
  from vae.data import sources, streaming
  data = np.asarray(_batch(20, seed=5))
  m = _model(prior="vampprior", prior_hparams={"num_components": 5, "init": "data",
                                               "init_std": 0.0})
  assert m.prior.init_examples == 5 and _model(prior="vampprior").prior.init_examples == 0
  key = jax.random.key(3)
  src = sources.ArraySource(data, 4, key)
  ex = np.asarray(train_lib.prior_examples(src, jax.random.key(8), m))
  # Five distinct rows of the training data, the same whether held or streamed.
  rows = [int(np.flatnonzero((data == e).all(axis=(1, 2, 3)))[0]) for e in ex]
  assert len(set(rows)) == 5
  stream = streaming.StreamingSource(streaming.ArrayReader(data), 4, key)
  np.testing.assert_array_equal(np.asarray(stream.examples(jax.random.key(8), 5)), ex)
  stream.close()
  p = model_lib.init_params(jax.random.key(0), m, examples=ex)
  np.testing.assert_array_equal(np.asarray(p["prior"]["pseudo_inputs"]), ex)
  # With the reference's noise (init_std): examples + init_std * N(0, 1).
  noisy = dataclasses.replace(m, prior=dataclasses.replace(m.prior, init_std=0.01))
  d = np.asarray(model_lib.init_params(jax.random.key(0), noisy, examples=ex)["prior"][
      "pseudo_inputs"]) - ex
  assert 0.008 < d.std() < 0.012 and abs(d.mean()) < 0.002
  # Said loudly: no examples, the wrong shape, more components than examples.
  with pytest.raises(ValueError, match=r"init='data'.*needs examples \(5, 6, 6, 1\), got None"):
    model_lib.init_params(jax.random.key(0), m)
  with pytest.raises(ValueError, match=r"got \(4, 6, 6, 1\)"):
    model_lib.init_params(jax.random.key(0), m, examples=ex[:4])
  with pytest.raises(ValueError, match="5 distinct training examples .* have 3"):
    sources.ArraySource(data[:3], 3, key).examples(key, 5)
  with pytest.raises(ValueError, match="init must be one of"):
    _model(prior="vampprior", prior_hparams={"init": "kmeans"})
  # The trainer draws them (its "prior_examples" key): with a zero learning
  # rate the trained pseudo-inputs are still those rows; a restore target
  # has the same structure without any data.
  state = train_lib.train(str(tmp_path / "run"), model=m, objective=objectives.get_objective("vae"),
                          optimizer=optax.sgd(0.0), source=src,
                          schedule=train_lib.Schedule(num_steps=2, log_every=2,
                                                      checkpoint_every=2), progress=False)
  want = train_lib.prior_examples(src, train_lib.named_keys(0)["prior_examples"], m)
  np.testing.assert_array_equal(np.asarray(state.params["prior"]["pseudo_inputs"]),
                                np.asarray(want))
  target = train_lib.restore_target(m, optax.sgd(0.0))
  assert jax.tree.structure(target) == jax.tree.structure(state)
