"""tfds ground-truth sets, read through tfds.testing.mock_data."""

import jax
import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from vae.data import sources  # noqa: E402
from vae.data.tfds_ground_truth import TfdsGroundTruth  # noqa: E402

EXPECTED = {
    "dsprites": ((3, 6, 40, 32, 32), (64, 64, 1)),
    "shapes3d": ((10, 10, 10, 8, 4, 15), (64, 64, 3)),
    # disentanglement_lib's smallNORB: the instance is not a factor, 64x64.
    "smallnorb": ((5, 9, 18, 6), (64, 64, 1)),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dsprites", "shapes3d"])
def test_factors_come_from_the_tfds_features(name):
  with tfds.testing.mock_data(num_examples=40):
    ds = TfdsGroundTruth(name)
  sizes, shape = EXPECTED[name]
  assert ds.factor_sizes == sizes and ds.observation_shape == shape
  assert ds.num_examples == 40
  labels, images = np.asarray(ds.labels), np.asarray(ds.images)
  # observations(labels of example i) returns example i's image, where no
  # other mock example has the same labels.
  index = ds.factors_to_index(labels)
  uniq = np.array([np.sum(index == v) == 1 for v in index])
  obs = np.asarray(jax.jit(ds.observations)(ds.labels))
  np.testing.assert_allclose(obs[uniq], images[uniq].astype(np.float32) * ds._scale)
  f = np.asarray(ds.sample_factors(jax.random.key(0), 100))
  assert set(map(tuple, f)) <= set(map(tuple, labels))  # only combinations that exist
  assert obs.max() <= 1.0


@pytest.mark.slow
def test_smallnorb_is_read_as_disentanglement_lib_reads_it():
  with tfds.testing.mock_data(num_examples=60):
    ds = TfdsGroundTruth("smallnorb")
  sizes, shape = EXPECTED["smallnorb"]
  assert ds.factor_names == ("category", "elevation", "azimuth", "lighting")
  assert ds.factor_sizes == sizes and ds.observation_shape == shape
  assert ds.split == "train+test"                   # both splits
  assert np.asarray(ds.images).shape == (ds.num_examples, 64, 64, 1)
  # Two examples with the same four factors (they differ in instance): the
  # key picks among exactly the examples with those factors, and sees both.
  labels = np.asarray(ds.labels).copy()
  images = np.asarray(ds.images).astype(np.float32) / 255.0
  labels[1] = labels[0]
  ds.set_examples(np.asarray(ds.images), labels)
  assert ds.max_examples_per_combination == 2
  # N (beta-TCVAE's data-set size, the evaluation's) counts examples, not the
  # factor combinations: the instance multiplies them.
  assert sources.num_examples(ds) == ds.num_examples
  f = np.repeat(labels[:1], 64, 0)
  obs = np.asarray(jax.jit(ds.observations)(f, jax.random.key(0)))
  seen = {int(np.argmin(np.abs(images - o).sum((1, 2, 3)))) for o in obs}
  assert seen == {0, 1}
  with pytest.raises(ValueError, match="needs a key"):
    ds.observations(f)
  # A combination that no example has renders blank, never another one.
  missing = next(i for i in range(ds.num_combinations) if np.asarray(ds.count)[i] == 0)
  blank = ds.observations(ds.index_to_factors(np.array([missing])), jax.random.key(1))
  assert float(np.abs(np.asarray(blank)).max()) == 0.0


def test_unknown_name_says_cars3d_is_not_in_tfds():
  with pytest.raises(ValueError, match="Cars3D is not in"):
    TfdsGroundTruth("cars3d")
