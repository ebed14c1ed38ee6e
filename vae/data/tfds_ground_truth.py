"""Ground-truth-factor data sets read from tensorflow-datasets.

The factor labels are read from the tfds features (their ``num_classes`` give
the factor sizes), the images are held in device memory, and lookup tables map
every factor combination to its examples, so ``observations(factors, key)`` is
a gather that works inside jit. ``sample_factors`` draws only combinations that
exist (uniformly over the examples, i.e. uniformly over combinations for a
complete set); a combination missing from the split renders blank.

tfds has ``dsprites`` (the exact public file; 737,280 images), ``shapes3d``
(Burgess & Kim 2018; 480,000) and ``smallnorb`` (LeCun et al. 2004); Cars3D
(Reed et al. 2015) is not in tensorflow-datasets.

smallNORB is read as disentanglement_lib reads it (Locatello et al. 2019,
``data/ground_truth/norb.py``): both splits together (48,600 images, every
combination present), the first camera's image resized from 96x96 to 64x64
with a Lanczos ("antialias") filter, and four factors: category (5),
elevation (9), azimuth (18), lighting (6). The object instance (10 per
category) is NOT a factor: ``observations`` draws it uniformly at random among
the examples that have the requested factors, so it needs a key.

References:
  LeCun, Huang & Bottou (2004), Learning methods for generic object
  recognition with invariance to pose and lighting (smallNORB).
  Locatello et al. (2019), Challenging Common Assumptions in the Unsupervised
  Learning of Disentangled Representations (disentanglement_lib's data sets).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from vae.data import base
from vae.data.ground_truth import GroundTruthData


@dataclasses.dataclass(frozen=True)
class TfdsSpec:
  """How a tfds data set maps onto the ground-truth interface.

  Attributes:
    factors: tfds label features that are factors, in the canonical order.
    nuisance: tfds label features that vary but are not factors (drawn at
      random by ``observations``).
    split: the default split.
    resize: square side to resize images to (None: keep).
    image: the image feature.
    stored_scale: a stored pixel times this is in [0, 1] (dsprites is
      stored as 0/1, the others as 0..255).
  """
  factors: tuple[str, ...]
  nuisance: tuple[str, ...] = ()
  split: str = "train"
  resize: int | None = None
  image: str = "image"
  stored_scale: float = 1.0 / 255.0


TFDS_SPECS = {
    "dsprites": TfdsSpec(("label_shape", "label_scale", "label_orientation",
                          "label_x_position", "label_y_position"), stored_scale=1.0),
    "shapes3d": TfdsSpec(("label_floor_hue", "label_wall_hue", "label_object_hue",
                          "label_scale", "label_shape", "label_orientation")),
    "smallnorb": TfdsSpec(("label_category", "label_elevation", "label_azimuth",
                           "label_lighting"), nuisance=("instance",), split="train+test",
                          resize=64),
}


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
  """uint8 [N, H, W, C] -> uint8 [N, size, size, C] with PIL's Lanczos filter
  (``Image.ANTIALIAS`` in disentanglement_lib's day)."""
  from PIL import Image
  out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
  for i, img in enumerate(images):
    for c in range(images.shape[-1]):
      out[i, :, :, c] = np.asarray(Image.fromarray(img[..., c]).resize(
          (size, size), Image.LANCZOS))
  return out


class TfdsGroundTruth(GroundTruthData):
  """A tfds data set with factor labels, behind the ground-truth interface.

  Args:
    name: "dsprites", "shapes3d" or "smallnorb".
    split: tfds split; None takes the data set's default ("train", and
      "train+test" for smallnorb, as disentanglement_lib).
    data_dir: tfds data_dir.
    max_examples: read at most this many examples (0: all), for tests.
  """

  def __init__(self, name: str, split: str | None = None, data_dir: str | None = None,
               max_examples: int = 0):
    import tensorflow_datasets as tfds  # lazy: `import vae` never loads TF
    spec, split = self._describe(name, split, data_dir)
    ds = tfds.load(name, split=split, data_dir=data_dir)
    if max_examples:
      ds = ds.take(max_examples)
    images, labels = [], []
    for b in tfds.as_numpy(ds.batch(10_000)):
      images.append(b[spec.image])
      labels.append(np.stack([b[k] for k in spec.factors], axis=-1))
    if not images:
      raise ValueError(f"tfds {name}[{split}] has no examples")
    images, labels = np.concatenate(images), np.concatenate(labels).astype(np.int32)
    self.check_factors(labels)
    if spec.resize:
      images = resize_images(images, spec.resize)
    self.set_examples(images, labels)

  def _describe(self, name: str, split: str | None, data_dir: str | None):
    """Sets the name, split, factors, nuisance and observation shape from
    the tfds features; returns (the set's ``TfdsSpec``, the split)."""
    if name not in TFDS_SPECS:
      raise ValueError(f"name must be one of {sorted(TFDS_SPECS)} (Cars3D is not in "
                       f"tensorflow-datasets), got {name!r}")
    import tensorflow_datasets as tfds
    spec = TFDS_SPECS[name]
    split = split or spec.split
    features = tfds.builder(name, data_dir=data_dir).info.features
    self.name, self.split, self.nuisance = name, split, spec.nuisance
    self.factor_names = tuple(k.replace("label_", "") for k in spec.factors)
    self.factor_sizes = tuple(int(features[k].num_classes) for k in spec.factors)
    shape = tuple(features[spec.image].shape)
    self.observation_shape = ((spec.resize, spec.resize) + shape[2:] if spec.resize else shape)
    return spec, split

  def set_examples(self, images: np.ndarray, labels: np.ndarray) -> None:
    """Holds ``images`` [N, *observation_shape] (uint8) with factor ``labels``
    [N, F] on the device, with the tables that find a combination's rows:
    combination i owns rows ``order[start[i] : start[i] + count[i]]``."""
    # Binary sets (dsprites) are stored as 0/1; others as 0..255.
    self._scale = 1.0 if np.max(images) <= 1 else 1.0 / 255.0
    self.images = jnp.asarray(images)            # uint8 on the device
    self.set_labels(labels)

  def set_labels(self, labels: np.ndarray) -> None:
    """The factor ``labels`` [N, F] of the examples and the lookup tables."""
    index = self.factors_to_index(np.asarray(labels))
    count = np.bincount(index, minlength=self.num_combinations).astype(np.int32)
    self.max_examples_per_combination = int(count.max())
    self.num_examples = len(labels)
    self.labels = jnp.asarray(labels, jnp.int32)
    self.order = jnp.asarray(np.argsort(index, kind="stable").astype(np.int32))
    self.start = jnp.asarray((np.cumsum(count) - count).astype(np.int32))
    self.count = jnp.asarray(count)

  def sample_factors(self, key: jax.Array, n: int) -> jax.Array:
    rows = jax.random.randint(key, (n,), 0, self.num_examples)
    return self.labels[rows]

  def observations(self, factors: jax.Array, key: jax.Array | None = None) -> jax.Array:
    """Images of the given factor combinations; where a combination has several
    examples (smallNORB's instances), one drawn uniformly with ``key``."""
    idx = self.factors_to_index(factors)
    if self.max_examples_per_combination > 1:
      if key is None:
        raise ValueError(
            f"tfds:{self.name} has examples that differ only in {self.nuisance or 'nothing'} "
            "(not a factor), so observations(factors, key) needs a key to draw one")
      pick = jax.random.randint(key, idx.shape, 0, jnp.maximum(self.count[idx], 1))
    else:
      pick = 0
    rows = self.order[jnp.minimum(self.start[idx] + pick, self.num_examples - 1)]
    images = self.read_rows(rows).astype(jnp.float32) * self._scale
    # A combination missing from the split gives a blank image, never another
    # combination's (sample_factors draws only combinations that exist).
    present = (self.count[idx] > 0).reshape(idx.shape + (1,) * len(self.observation_shape))
    return jnp.where(present, images, 0.0)

  def read_rows(self, rows: jax.Array) -> jax.Array:
    """The stored images of example ``rows`` [...]: [..., *observation_shape]."""
    return jnp.take(self.images, rows, axis=0)


class StreamedTfdsGroundTruth(TfdsGroundTruth):
  """``TfdsGroundTruth`` whose images stay on disk: only the factor labels
  (and lookup tables) are held in memory; ``observations`` reads the images
  it needs by random access (``vae.data.streaming.TfdsReader``) through a
  host callback, so it still works inside jit (the metrics, the held-out
  sample). For sets larger than the device's memory (Shapes3D's 5.9 GB);
  its ``reader`` feeds the streaming training source.

  Args: as ``TfdsGroundTruth`` (the set must be prepared as array_record).
  """

  def __init__(self, name: str, split: str | None = None, data_dir: str | None = None,
               max_examples: int = 0):
    import tensorflow_datasets as tfds  # lazy: `import vae` never loads TF
    from vae.data import streaming
    spec, split = self._describe(name, split, data_dir)
    self.reader = streaming.TfdsReader(name, split, data_dir, spec.image, spec.resize,
                                       spec.stored_scale)
    self._scale = self.reader.scale
    # One pass over the labels, leaving the images encoded.
    labels_source = tfds.data_source(name, split=split, data_dir=data_dir,
                                     decoders={spec.image: tfds.decode.SkipDecoding()})
    n = min(len(labels_source), max_examples) if max_examples else len(labels_source)
    if not n:
      raise ValueError(f"tfds {name}[{split}] has no examples")
    if max_examples:
      self.reader.num_examples = n
    labels = np.array([[int(e[k]) for k in spec.factors] for e in streaming.read_examples(
        labels_source, list(range(n)), self.reader._pool)], np.int32)
    self.check_factors(labels)
    self.set_labels(labels)

  def read_rows(self, rows: jax.Array) -> jax.Array:
    shape = tuple(rows.shape) + tuple(self.observation_shape)

    def read(r):
      r = np.asarray(r)
      return self.reader.read(r.reshape(-1)).reshape(r.shape + tuple(self.observation_shape))
    return jax.pure_callback(read, jax.ShapeDtypeStruct(shape, jnp.uint8), rows,
                             vmap_method="expand_dims")


def stored_bytes(name: str, data_dir: str | None) -> int:
  """Bytes a prepared tfds set's training split takes as stored (0 if it is
  not prepared yet)."""
  import tensorflow_datasets as tfds
  spec = TFDS_SPECS[name]
  info = tfds.builder(name, data_dir=data_dir).info
  if not info.splits:      # not prepared yet: its size is not known here
    return 0
  shape = (spec.resize, spec.resize) + tuple(info.features[spec.image].shape[2:]) \
      if spec.resize else tuple(info.features[spec.image].shape)
  return int(info.splits[spec.split].num_examples) * int(np.prod(shape))


def choose_source(name: str, settings: base.DataSettings) -> str:
  """"memory" or "stream" for tfds set ``name``: as ``base.choose_source``,
  except that "auto" never streams a set that cannot be read by random
  access (a tfrecord copy is read only in sequence)."""
  from vae.data import streaming
  tfds_dir = settings.tfds_data_dir or None
  if settings.source == "auto" and not streaming.is_random_access(name, tfds_dir):
    return "memory"
  return base.choose_source(settings, lambda: stored_bytes(name, tfds_dir))


def _record(name: str, spec: TfdsSpec) -> base.DataSet:
  """The record of tfds set ``name``: held on the device, or streamed by
  random access (uniform draws with replacement, as the on-device source
  and disentanglement_lib) where it is prepared as array_record."""

  def open_(settings: base.DataSettings) -> base.Opened:
    tfds_dir = settings.tfds_data_dir or None
    source = choose_source(name, settings)
    if source == "stream":
      gt = StreamedTfdsGroundTruth(name, data_dir=tfds_dir)
      train = gt.reader
      train.sampling = "uniform"
    else:
      gt = train = TfdsGroundTruth(name, data_dir=tfds_dir)
    return base.open_ground_truth(settings, gt, train, source)

  return base.DataSet(
      f"tfds:{name}", open_, f"tensorflow-datasets {name} with its factor labels",
      stored_scale=spec.stored_scale, can_stream=True,
      ground_truth=lambda tfds_data_dir=None, split=None: TfdsGroundTruth(
          name, split=split, data_dir=tfds_data_dir))


DATASETS = tuple(_record(name, spec) for name, spec in TFDS_SPECS.items())
