"""tfds ground-truth sets, read through tfds.testing.mock_data."""

import jax
import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from vae.data.tfds_ground_truth import TfdsGroundTruth  # noqa: E402

EXPECTED = {
    "dsprites": ((3, 6, 40, 32, 32), (64, 64, 1)),
    "shapes3d": ((10, 10, 10, 8, 4, 15), (64, 64, 3)),
    "smallnorb": ((5, 10, 9, 18, 6), (96, 96, 1)),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
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


def test_unknown_name_says_cars3d_is_not_in_tfds():
  with pytest.raises(ValueError, match="Cars3D is not in"):
    TfdsGroundTruth("cars3d")
