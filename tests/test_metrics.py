"""Disentanglement metrics: known answers, and agreement with a numpy +
scikit-learn reference of each published definition (vae/metrics/reference.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import metrics
from vae.data.synthetic import FactorVectors
from vae.metrics import reference as ref
from vae.metrics import utils

SMALL = dict(num_train=2000, num_eval=1000)
SMALL_T = dict(num_train=2000, num_test=1000)


def _perm_scale(f):
  order, scale = [2, 0, 4, 1, 3], np.array([3.0, -1.0, 0.5, 2.0, 7.0], np.float32)
  mat = (np.eye(f)[order] * scale[:f]).astype(np.float32)
  return lambda x: x @ jnp.asarray(mat)


def _noise(x):
  # A pseudo-random function of the whole factor combination: with the 737,280
  # combinations of the default sizes it carries no usable information.
  w = jnp.asarray(np.random.default_rng(0).normal(size=(x.shape[-1], 5)) * 1000.0, jnp.float32)
  h = jnp.sin(x @ w) * 43758.5453
  return h - jnp.floor(h)


def _rotate01(angle=np.pi / 4):
  c, s = np.cos(angle), np.sin(angle)
  mat = np.eye(5, dtype=np.float32)
  mat[:2, :2] = [[c, -s], [s, c]]
  return lambda x: x @ jnp.asarray(mat)


def _all(gt, rep, seed=0, dci="linear"):
  return metrics.compute_all(
      gt, rep, jax.random.key(seed),
      beta_vae=SMALL, factor_vae=dict(SMALL, num_variance_estimate=2000),
      mig=dict(num_train=4000), dci=dict(SMALL_T, importance=dci), sap=SMALL_T,
      modularity=SMALL_T)


@pytest.fixture(scope="module")
def gt10():
  return FactorVectors((4, 5, 6, 8, 10))     # every factor fits in 20 histogram bins


@pytest.fixture(scope="module")
def perfect_scores(gt10):
  return _all(gt10, lambda x: x)


@pytest.mark.slow   # every metric compiled and run: ~60 s; MIG alone is a fast test below
def test_ground_truth_factors_score_at_or_near_one(perfect_scores):
  s = perfect_scores
  assert s["beta_vae"]["eval_accuracy"] == 1.0
  assert s["factor_vae"]["eval_accuracy"] == 1.0
  assert s["mig"]["mig"] > 0.98
  assert s["dci"]["disentanglement"] > 0.9 and s["dci"]["completeness"] > 0.9
  assert s["modularity"]["modularity"] > 0.99
  assert s["modularity"]["explicitness_test"] > 0.9
  # SAP (classification accuracy, as disentanglement_lib for discrete
  # factors): the best latent is right, the others are not; its ceiling is
  # below 1 by construction, see test_sap_of_a_perfect_binary_code.
  assert s["sap"]["sap"] > 0.1


def test_ground_truth_factors_score_one_on_mig(gt10):
  # The fast form of the test above: the factors themselves have each its own
  # latent, which carries all of the factor's entropy (Chen et al. 2018, Eq. 7).
  assert metrics.compute_all(gt10, lambda x: x, jax.random.key(0), ["mig"],
                             mig=dict(num_train=4000))["mig"]["mig"] > 0.98


@pytest.mark.slow
def test_headlines_are_each_metrics_named_score(perfect_scores):
  head = metrics.headlines({**perfect_scores, "elbo": {"elbo": -1.0}, "mig": {"seconds": 1.0}})
  assert "elbo" not in head and head["mig"] is None           # not a metric; no score
  assert head["beta_vae"] == perfect_scores["beta_vae"]["eval_accuracy"]
  assert head["dci"] == perfect_scores["dci"]["disentanglement"]
  assert set(head) == set(metrics.SCORE_KEYS)


@pytest.mark.slow
def test_a_permuted_rescaled_copy_scores_the_same(gt10, perfect_scores):
  s = _all(gt10, _perm_scale(5))
  for m, key in metrics.SCORE_KEYS.items():
    if m == "sap":
      continue   # not scale-invariant: the SVM's penalty (C = 0.01) sees the scale
    assert abs(s[m][key] - perfect_scores[m][key]) < 0.03, (m, s[m][key], perfect_scores[m][key])
  # Permuting and flipping signs leaves SAP as it was.
  order, sign = [2, 0, 4, 1, 3], np.array([1, -1, 1, -1, 1], np.float32)
  flip = lambda x: x[:, order] * sign
  sap = metrics.compute_sap(gt10, flip, jax.random.key(0), **SMALL_T)["sap"]
  assert abs(sap - perfect_scores["sap"]["sap"]) < 0.01


def test_sap_of_a_perfect_binary_code():
  # Balanced binary factors: the factor's own latent predicts it perfectly,
  # any other is at chance (0.5), so SAP = 1 - 0.5.
  gt = FactorVectors((2,) * 5)
  s = metrics.compute_sap(gt, lambda x: x, jax.random.key(0), **SMALL_T)
  assert abs(s["sap"] - 0.5) < 0.04, s["sap"]
  s = metrics.compute_sap(gt, _perm_scale(5), jax.random.key(0), **SMALL_T)
  assert abs(s["sap"] - 0.5) < 0.04, s["sap"]


@pytest.mark.slow
def test_random_noise_scores_near_chance():
  gt = FactorVectors()                          # dSprites' sizes, 737,280 combinations
  s = _all(gt, _noise)
  assert abs(s["beta_vae"]["eval_accuracy"] - 0.2) < 0.05
  assert s["factor_vae"]["eval_accuracy"] < 0.3
  assert s["mig"]["mig"] < 0.02
  assert s["dci"]["disentanglement"] < 0.2 and s["dci"]["informativeness_test"] < 0.3
  assert s["sap"]["sap"] < 0.03
  assert abs(s["modularity"]["explicitness_test"] - 0.5) < 0.03


@pytest.mark.slow
def test_duplicating_a_factor_costs_mig_its_share_but_not_modularity(gt10, perfect_scores):
  # z = (f0, f0, f1, f2, f3, f4): factor 0's gap is zero, so MIG loses 1/5;
  # each latent still depends on one factor only, so it stays modular
  # (Ridgeway & Mozer 2018 leave a factor spread over latents to compactness).
  dup = lambda x: jnp.concatenate([x[:, :1], x], axis=1)
  s = metrics.compute_mig(gt10, dup, jax.random.key(0), num_train=4000)
  assert abs(s["mig_per_factor"][0]) < 0.01
  assert abs(s["mig"] - 0.8 * perfect_scores["mig"]["mig"]) < 0.02
  m = metrics.compute_modularity_explicitness(gt10, dup, jax.random.key(0), **SMALL_T)
  assert m["modularity"] > 0.99
  # Two factors in ONE latent is what modularity penalises: z0 = 5 f0 + f1
  # takes 20 values (one per bin), so I(z0; f0) = H(f0) = log 4 and
  # I(z0; f1) = log 5; that latent's deviation is (log 4)^2 / ((log 5)^2 (K - 1))
  # with K = 5 factors, and the score is the mean over the 4 latents.
  merge = lambda x: jnp.concatenate([jnp.round(x[:, :1] * 3) * 5 + jnp.round(x[:, 1:2] * 4),
                                     x[:, 2:]], axis=1)
  m = metrics.compute_modularity_explicitness(gt10, merge, jax.random.key(0), **SMALL_T)
  want = 1 - (np.log(4) ** 2 / (np.log(5) ** 2 * 4)) / 4
  assert abs(m["modularity"] - want) < 0.005, (m["modularity"], want)


@pytest.mark.slow
def test_rotating_two_factors_together_lowers_disentanglement(gt10, perfect_scores):
  s = _all(gt10, _rotate01())
  p = perfect_scores
  assert s["dci"]["disentanglement"] < p["dci"]["disentanglement"] - 0.1
  assert s["mig"]["mig"] < p["mig"]["mig"] - 0.2
  assert s["factor_vae"]["eval_accuracy"] < p["factor_vae"]["eval_accuracy"] - 0.1
  assert s["modularity"]["modularity"] < p["modularity"]["modularity"] - 0.05


# --------------------------------------------------------------- agreement
@pytest.fixture(scope="module")
def entangled_codes():
  """Codes of random factors: a partial mixing plus noise (scores between 0
  and 1), float32, train and test."""
  rng = np.random.default_rng(0)
  sizes = (3, 6, 10, 12, 8)
  mix = np.eye(5) + 0.4 * rng.normal(size=(5, 5))
  def draw(n):
    f = np.stack([rng.integers(0, s, n) for s in sizes], 1)
    z = (f / (np.array(sizes) - 1.0)) @ mix + 0.15 * rng.normal(size=(n, 5))
    z = np.concatenate([z, rng.normal(size=(n, 1))], 1)      # one uninformative latent
    return z.astype(np.float32), f
  (xtr, ytr), (xte, yte) = draw(4000), draw(2000)
  return sizes, xtr, ytr, xte, yte


def test_mig_agrees_with_reference(entangled_codes):
  sizes, x, y, _, _ = entangled_codes
  ours = metrics.mig_scores(x, y, factor_sizes=sizes)["mig"]
  theirs = ref.mig_from_codes(x.astype(np.float64), y)["mig"]
  assert 0.05 < theirs < 0.9
  np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_latent_factors_names_the_factor_each_latent_encodes():
  # Latents that are the factors, permuted: latent j encodes factor perm[j]
  # exactly, so its normalised mutual information with that factor is 1.
  rng = np.random.default_rng(1)
  sizes, perm = (3, 6, 10, 12), (2, 0, 3, 1)
  f = np.stack([rng.integers(0, s, 20_000) for s in sizes], 1)
  codes = (f[:, perm] + 0.01 * rng.normal(size=f.shape)).astype(np.float32)
  names = ("a", "b", "c", "d")
  got = metrics.latent_factors(metrics.mig_scores(codes, f, factor_sizes=sizes), names)
  assert [n for n, _ in got] == [names[k] for k in perm]
  np.testing.assert_allclose([v for _, v in got], 1.0, atol=0.02)
  # A noise latent informs nothing much, and a wrong factor count is refused.
  noisy = np.concatenate([codes, rng.normal(size=(len(f), 1)).astype(np.float32)], 1)
  assert metrics.latent_factors(metrics.mig_scores(noisy, f, factor_sizes=sizes),
                                names)[-1][1] < 0.01
  with pytest.raises(ValueError, match="F = 3 factor names"):
    metrics.latent_factors(metrics.mig_scores(codes, f, factor_sizes=sizes), names[:3])


def test_discretisation_and_mutual_information_match_numpy_and_sklearn(entangled_codes):
  sizes, x, y, _, _ = entangled_codes
  np.testing.assert_array_equal(np.asarray(utils.histogram_discretize(jnp.asarray(x))) + 1,
                                ref.histogram_discretize(x.astype(np.float64)))
  disc = ref.histogram_discretize(x.astype(np.float64))
  mi = utils.discrete_mutual_info(jnp.asarray(disc), jnp.asarray(y), 21, sizes)
  np.testing.assert_allclose(mi, ref.discrete_mutual_info(disc, y), atol=1e-5)
  np.testing.assert_allclose(utils.discrete_entropy(jnp.asarray(y), sizes),
                             ref.discrete_entropy(y), atol=1e-5)


@pytest.mark.slow
def test_sap_agrees_with_reference(entangled_codes):
  sizes, xtr, ytr, xte, yte = entangled_codes
  ours = metrics.sap_from_codes(xtr, ytr, xte, yte, factor_sizes=sizes)
  theirs = ref.sap_from_codes(xtr.astype(np.float64), ytr, xte.astype(np.float64), yte)
  np.testing.assert_allclose(ours["score_matrix"], theirs["score_matrix"], atol=0.01)
  np.testing.assert_allclose(ours["sap"], theirs["sap"], atol=0.005)


def test_sap_binary_factor_matches_liblinear():
  rng = np.random.default_rng(1)
  y = rng.integers(0, 2, (3000, 1))
  x = (y + 0.8 * rng.normal(size=(3000, 1))).astype(np.float32)
  ours = metrics.sap_from_codes(np.c_[x, -x], y, np.c_[x, -x], y, factor_sizes=(2,))
  theirs = ref.sap_from_codes(np.c_[x, -x].astype(np.float64), y, np.c_[x, -x], y)
  np.testing.assert_allclose(ours["score_matrix"], theirs["score_matrix"], atol=0.003)


@pytest.mark.slow
def test_dci_linear_agrees_with_reference(entangled_codes):
  sizes, xtr, ytr, xte, yte = entangled_codes
  ours = metrics.dci_from_codes(xtr, ytr, xte, yte, factor_sizes=sizes, importance="linear")
  theirs = ref.dci_from_codes(xtr.astype(np.float64), ytr, xte.astype(np.float64), yte,
                              importance="linear")
  for k in ("disentanglement", "completeness"):
    np.testing.assert_allclose(ours[k], theirs[k], atol=0.01, err_msg=k)
  for k in ("informativeness_train", "informativeness_test"):
    np.testing.assert_allclose(ours[k], theirs[k], atol=0.01, err_msg=k)


@pytest.mark.slow
def test_dci_gbt_agrees_with_reference(entangled_codes):
  sizes, xtr, ytr, xte, yte = entangled_codes
  n = 600
  args = (xtr[:n], ytr[:n, :2], xte[:n], yte[:n, :2])
  ours = metrics.dci_from_codes(*args, factor_sizes=sizes[:2], importance="gbt")
  theirs = ref.dci_from_codes(*args, importance="gbt")
  for k in ("disentanglement", "completeness", "informativeness_test"):
    np.testing.assert_allclose(ours[k], theirs[k], atol=1e-4, err_msg=k)


@pytest.mark.slow
def test_dci_with_trees_in_jax_agrees_with_scikit_learns(entangled_codes):
  sizes, xtr, ytr, xte, yte = entangled_codes
  n = 600
  args = (xtr[:n], ytr[:n, :2], xte[:n], yte[:n, :2])
  ours = metrics.dci_from_codes(*args, factor_sizes=sizes[:2], importance="gbt_jax")
  theirs = metrics.dci_from_codes(*args, factor_sizes=sizes[:2], importance="gbt")
  # The same algorithm; exact ties among splits go their own way from the
  # first one on (tests/test_gbt.py), so agreement, not equality.
  for k in ("disentanglement", "completeness"):
    np.testing.assert_allclose(ours[k], theirs[k], atol=5e-3, err_msg=k)
  for k in ("informativeness_train", "informativeness_test"):
    np.testing.assert_allclose(ours[k], theirs[k], atol=0.01, err_msg=k)


def test_dci_of_known_importance_matrices():
  d, c = metrics.dci.dci_from_importance(jnp.eye(4))
  np.testing.assert_allclose([d, c], [1.0, 1.0], atol=1e-6)
  d, c = metrics.dci.dci_from_importance(jnp.ones((4, 4)))
  np.testing.assert_allclose([d, c], [0.0, 0.0], atol=1e-6)
  with pytest.raises(ValueError, match="importance"):
    metrics.dci_from_codes(np.zeros((4, 2)), np.zeros((4, 1), int), np.zeros((4, 2)),
                           np.zeros((4, 1), int), factor_sizes=(2,), importance="forest")


@pytest.mark.slow
def test_modularity_and_explicitness_agree_with_reference(entangled_codes):
  sizes, xtr, ytr, xte, yte = entangled_codes
  ours = metrics.modularity_from_codes(xtr, ytr, xte, yte, factor_sizes=sizes)
  theirs = ref.modularity_from_codes(xtr.astype(np.float64), ytr, xte.astype(np.float64), yte)
  np.testing.assert_allclose(ours["modularity"], theirs["modularity"], atol=1e-4)
  for k in ("explicitness_train", "explicitness_test"):
    np.testing.assert_allclose(ours[k], theirs[k], atol=0.005, err_msg=k)


def test_roc_auc_matches_sklearn_with_ties():
  from sklearn.metrics import roc_auc_score
  rng = np.random.default_rng(0)
  s = np.round(rng.normal(size=500), 1).astype(np.float32)    # many ties
  y = rng.random(500) < 1 / (1 + np.exp(-2 * s))
  np.testing.assert_allclose(utils.roc_auc(jnp.asarray(s), jnp.asarray(y)),
                             roc_auc_score(y, s), atol=1e-5)


@pytest.mark.slow
def test_beta_vae_classifier_agrees_with_sklearn(gt10):
  rep = _rotate01(0.3)
  from vae.metrics.beta_vae import beta_vae_features
  xtr, ytr = beta_vae_features(gt10, _noisy(rep), jax.random.key(0), 1500, 8)
  xte, yte = beta_vae_features(gt10, _noisy(rep), jax.random.key(1), 1000, 8)
  ours = metrics.beta_vae_from_features(xtr, ytr, xte, yte, 5)
  theirs = ref.beta_vae_from_features(np.asarray(xtr, np.float64), np.asarray(ytr),
                                      np.asarray(xte, np.float64), np.asarray(yte))
  assert 0.3 < theirs["eval_accuracy"] < 0.99
  for k in ("train_accuracy", "eval_accuracy"):
    np.testing.assert_allclose(ours[k], theirs[k], atol=0.01, err_msg=k)


def _noisy(rep):
  # Adds a pseudo-random function of the observation, so scores are below 1.
  return lambda x: rep(x) + 1.5 * (_noise(x * 7.0) - 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["beta_vae", "factor_vae"])
def test_sampling_metrics_agree_with_reference_loops(name):
  # The reference samples its own points (numpy RNG, a Python loop over
  # batches, as disentanglement_lib); the two agree within sampling error.
  gt = FactorVectors()
  rep = _noisy(_rotate01(0.5))
  if name == "beta_vae":
    ours = metrics.compute_beta_vae(gt, rep, jax.random.key(0), num_train=1500, num_eval=1500,
                                    batch_size=16)
    theirs = ref.beta_vae(gt, rep, np.random.default_rng(0), num_train=1500, num_eval=1500,
                          batch_size=16)
  else:
    ours = metrics.compute_factor_vae(gt, rep, jax.random.key(0), num_train=1500,
                                      num_eval=1500, num_variance_estimate=2000, batch_size=16)
    theirs = ref.factor_vae(gt, rep, np.random.default_rng(0), num_train=1500, num_eval=1500,
                            num_variance_estimate=2000, batch_size=16)
  assert 0.3 < theirs["eval_accuracy"] < 0.98, theirs
  assert abs(ours["eval_accuracy"] - theirs["eval_accuracy"]) < 0.04, (ours, theirs)


def test_scoring_another_model_of_the_same_shape_reuses_the_compiled_program():
  from vae import model as model_lib
  from vae.metrics import utils as mu
  gt = FactorVectors((4, 5, 6))
  model = model_lib.make_model(architecture="mlp", data_shape=(3,), latent_dim=3,
                               encoder_hidden=(16,), decoder_hidden=(16,),
                               likelihood="gaussian")
  p1, p2 = (model_lib.init_params(jax.random.key(i), model) for i in (1, 2))
  r1 = metrics.compute_mig(gt, metrics.representation_from_params(p1, model), jax.random.key(0),
                           num_train=500)
  before = mu._sample_codes._cache_size()
  r2 = metrics.compute_mig(gt, metrics.representation_from_params(p2, model), jax.random.key(0),
                           num_train=500)
  assert mu._sample_codes._cache_size() == before      # no new compilation
  assert r1["mig_per_factor"] != r2["mig_per_factor"]  # ... and p2 was really used
  codes, _ = mu.sample_codes(gt, metrics.representation_from_params(p2, model),
                             jax.random.key(0), 32)
  f = gt.sample_factors(jax.random.key(0), 32)
  want = jax.vmap(lambda x: model_lib.encode(p2, x, model=model)[0])(gt.observations(f))
  np.testing.assert_allclose(codes, want, rtol=1e-5, atol=1e-6)


def test_scaling_the_protocol_scales_sample_sizes_only():
  from vae import metrics as metrics_lib
  opts = metrics_lib.scale_protocol("mig", 0.1)
  assert opts == {"num_train": 1000}                 # MIG keeps its 20 bins
  assert metrics_lib.scale_protocol("dci", 0.1) == {"num_train": 1000, "num_test": 500}
  assert metrics_lib.scale_protocol("mig", 1.0) == {}


def test_dci_of_an_all_zero_importance_matrix_is_zero_not_nan():
  # Collapsed codes: no code informs any factor. disentanglement_lib scores 0.
  from vae.metrics.dci import dci_from_importance
  dis, comp = dci_from_importance(jnp.zeros((10, 5)))
  assert float(dis) == pytest.approx(0.0, abs=1e-6) and float(comp) == pytest.approx(0.0, abs=1e-6)
