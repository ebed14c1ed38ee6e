"""Ground-truth-factor data sets read from tensorflow-datasets.

The factor labels are read from the tfds features (their ``num_classes`` give
the factor sizes), the images are held in device memory, and a lookup table maps
every factor combination to its example, so ``observations(factors)`` is a
gather that works inside jit. Combinations missing from the chosen split map to
-1; ``sample_factors`` draws only combinations that exist (uniformly over the
examples, i.e. uniformly over combinations for a complete set).

tfds has ``dsprites`` (the exact public file; 737,280 images), ``shapes3d``
(Burgess & Kim 2018; 480,000) and ``smallnorb`` (LeCun et al. 2004; 24,300 per
split); Cars3D (Reed et al. 2015) is not in tensorflow-datasets.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from vae.data.ground_truth import GroundTruthData

# name -> (factor feature names in the data set's canonical order, image feature)
TFDS_FACTORS = {
    "dsprites": (("label_shape", "label_scale", "label_orientation",
                  "label_x_position", "label_y_position"), "image"),
    "shapes3d": (("label_floor_hue", "label_wall_hue", "label_object_hue",
                  "label_scale", "label_shape", "label_orientation"), "image"),
    "smallnorb": (("label_category", "instance", "label_elevation",
                   "label_azimuth", "label_lighting"), "image"),
}


class TfdsGroundTruth(GroundTruthData):
  """A tfds data set with factor labels, behind the ground-truth interface.

  Args:
    name: "dsprites", "shapes3d" or "smallnorb".
    split: tfds split (e.g. "train", or "train+test" for all of smallnorb).
    data_dir: tfds data_dir.
    max_examples: read at most this many examples (0: all), for tests.
  """

  def __init__(self, name: str, split: str = "train", data_dir: str | None = None,
               max_examples: int = 0):
    if name not in TFDS_FACTORS:
      raise ValueError(f"name must be one of {sorted(TFDS_FACTORS)} (Cars3D is not in "
                       f"tensorflow-datasets), got {name!r}")
    import tensorflow_datasets as tfds  # lazy: `import vae` never loads TF
    keys, image_key = TFDS_FACTORS[name]
    builder = tfds.builder(name, data_dir=data_dir)
    self.name = name
    self.factor_names = tuple(k.replace("label_", "") for k in keys)
    self.factor_sizes = tuple(int(builder.info.features[k].num_classes) for k in keys)
    self.observation_shape = tuple(builder.info.features[image_key].shape)
    ds = tfds.load(name, split=split, data_dir=data_dir)
    if max_examples:
      ds = ds.take(max_examples)
    images, labels = [], []
    for b in tfds.as_numpy(ds.batch(10_000)):
      images.append(b[image_key])
      labels.append(np.stack([b[k] for k in keys], axis=-1))
    if not images:
      raise ValueError(f"tfds {name}[{split}] has no examples")
    images, labels = np.concatenate(images), np.concatenate(labels).astype(np.int32)
    self.check_factors(labels)
    # Binary sets (dsprites) are stored as 0/1; others as 0..255.
    self._scale = 1.0 if images.max() <= 1 else 1.0 / 255.0
    lookup = np.full(math.prod(self.factor_sizes), -1, np.int32)
    lookup[self.factors_to_index(labels)] = np.arange(len(labels), dtype=np.int32)
    self.num_examples = len(labels)
    self.images = jnp.asarray(images)            # uint8 on the device
    self.labels = jnp.asarray(labels)
    self.lookup = jnp.asarray(lookup)

  def sample_factors(self, key: jax.Array, n: int) -> jax.Array:
    rows = jax.random.randint(key, (n,), 0, self.num_examples)
    return self.labels[rows]

  def observations(self, factors: jax.Array) -> jax.Array:
    rows = self.lookup[self.factors_to_index(factors)]
    return jnp.take(self.images, rows, axis=0).astype(jnp.float32) * self._scale
