"""vae.metrics.gbt: scikit-learn's GradientBoostingClassifier grown in JAX."""

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from vae.metrics.gbt import GradientBoostedTrees


def _problem(seed, n, classes, d=5):
  rng = np.random.default_rng(seed)

  def draw():
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = np.floor((x[:, 0] + 0.5 * x[:, 1] + 0.3 * rng.normal(size=n)) * classes / 4) % classes
    return x, (y * 3 + 1).astype(int)          # labels that are not 0..K-1
  return draw(), draw()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_tree_is_scikit_learns_regression_tree(seed):
  """On a continuous target the tree is scikit-learn's: the same splits,
  leaves and importances, also where two latents are copies and so tie at
  every split (scikit-learn's random order of latents is replayed)."""
  import jax
  from sklearn.tree import DecisionTreeRegressor
  from vae.metrics import gbt
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(300, 5)).astype(np.float32)
  r = np.sin(2 * x[:, 0]) + x[:, 1] * x[:, 2] + 0.3 * rng.normal(size=300)
  x = np.concatenate([x, x[:, :3]], axis=1)     # copies: every split on 0-2 ties with one
  theirs = DecisionTreeRegressor(criterion="squared_error", max_depth=3, random_state=seed)
  theirs.fit(x, r)
  rank = gbt.visiting_orders(np.random.RandomState(seed).randint(0, gbt.RAND_R_MAX, size=1), 8)
  with jax.enable_x64(True):
    xd = jax.numpy.asarray(x, jax.numpy.float64)
    order = jax.numpy.argsort(xd, axis=0).T.astype(jax.numpy.int32)
    leaf, _, imp = jax.jit(gbt._grow_one)(jax.numpy.asarray(r), xd, order, rank[0])
    leaf, imp = np.asarray(leaf), np.asarray(imp)
  means = np.array([r[leaf == k].mean() if np.any(leaf == k) else 0 for k in range(8)])
  np.testing.assert_allclose(means[leaf], theirs.predict(x), rtol=0, atol=1e-12)
  assert len(np.unique(leaf)) == theirs.get_n_leaves()
  np.testing.assert_allclose(imp / imp.sum(), theirs.feature_importances_, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("classes", [2, 4])
def test_the_ensemble_agrees_with_scikit_learns(classes):
  """Boosting on class labels: stage 0's residuals take two values, so
  candidate splits tie in exact arithmetic and scikit-learn's choice among
  them is its rounding (sums in the order its samples happen to lie in);
  from the first such tie on, the two ensembles are two members of the
  same family, as scikit-learn's own are under a shuffle of the rows."""
  (x, y), (xt, yt) = _problem(0, 400, classes)
  theirs = GradientBoostingClassifier(n_estimators=20, random_state=0).fit(x, y)
  ours = GradientBoostedTrees(stages=20).fit(x, y)
  np.testing.assert_array_equal(ours.classes_, theirs.classes_)
  for data, labels in ((x, y), (xt, yt)):
    assert abs(np.mean(ours.predict(data) == labels)
               - np.mean(theirs.predict(data) == labels)) < 0.02
  np.testing.assert_allclose(ours.feature_importances_, theirs.feature_importances_, atol=0.02)
  assert np.argmax(ours.feature_importances_) == np.argmax(theirs.feature_importances_) == 0
  assert abs(ours.feature_importances_.sum() - 1) < 1e-12


def test_codes_that_are_not_finite_are_refused():
  x = np.zeros((10, 2), np.float32)
  x[3, 1] = np.nan
  with pytest.raises(ValueError, match=r"fit needs finite codes, got 1 NaN or infinite"):
    GradientBoostedTrees().fit(x, np.arange(10) % 2)


def test_bad_labels_are_refused():
  x = np.zeros((10, 2), np.float32)
  with pytest.raises(ValueError, match="at least 2 classes"):
    GradientBoostedTrees().fit(x, np.ones(10))
  with pytest.raises(ValueError, match=r"x \[N, D\] and y \[N\], got \(10, 2\) and \(9,\)"):
    GradientBoostedTrees().fit(x, np.ones(9))
