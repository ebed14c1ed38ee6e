"""Your own images: a folder of image files, or an ``.npz`` of images.

``load_images(path, data_shape, split)`` reads either into memory as uint8
pixels (``Images``; sources scale them by 1/255 on the device), and
``ImageFileReader`` reads a folder's files on demand for the streaming source
(``vae.data.streaming``), so a folder larger than memory trains too.

* A folder is searched recursively for ``IMAGE_EXTENSIONS`` files, in sorted
  order of their paths relative to it. With ``labels=True`` the first
  subfolder under it names each image's class (classes numbered in sorted
  order of their names), as ``torchvision.datasets.ImageFolder`` does.
* Every image is converted to grayscale ("L") or RGB by the channel count of
  ``data_shape`` (1 or 3) and resized to its height and width with PIL's
  Lanczos filter, unless it already has that size.
* The validation split is deterministic and stable: an image belongs to it
  when the MD5 of its relative path (of its row index, for an ``.npz``),
  read as a number in [0, 1), is below ``validation_fraction``. Adding or
  removing files never moves the others between splits.
* A file that cannot be read raises ``UnreadableImageError`` naming it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np

from vae import checks
from vae.data import base

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
SPLITS = ("train", "validation", "all")


class UnreadableImageError(ValueError):
  """An image file could not be decoded; the message names the file."""


@dataclasses.dataclass(frozen=True)
class ImageListing:
  """The image files under a folder.

  Attributes:
    root: the folder.
    files: paths relative to ``root``, sorted.
    labels: int32 [N] class of each file (its first subfolder), or None.
    class_names: the classes in label order (empty without labels).
  """
  root: str
  files: tuple[str, ...]
  labels: np.ndarray | None = None
  class_names: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Images:
  """Images in memory.

  Attributes:
    pixels: [N, H, W, C] uint8 values 0..255, or float32 already in the
      model's units (an ``.npz`` of floats).
    scale: the model sees ``pixels * scale`` (1/255 for uint8 pixels).
    labels: int32 [N] or None.
    names: a name per image (relative path, or "row i" of an ``.npz``).
    class_names: the label names (folders), if any.
    where: ``where(i)`` names image ``i`` as its source knows it (its file,
      or its row of the file), for error messages; None: its index.
  """
  pixels: np.ndarray
  scale: float
  labels: np.ndarray | None = None
  names: tuple[str, ...] = ()
  class_names: tuple[str, ...] = ()
  where: Callable[[int], str] | None = dataclasses.field(default=None, compare=False)

  def __len__(self) -> int:
    return int(self.pixels.shape[0])

  @property
  def num_examples(self) -> int:
    return len(self)

  @classmethod
  def from_reader(cls, reader) -> "Images":
    """Every example of a reader (``image_reader``), read into memory."""
    return cls(reader.read(np.arange(reader.num_examples)), reader.scale, None,
               tuple(reader.names), where=reader.where)

  def as_float(self, max_examples: int = 0) -> np.ndarray:
    """float32 [N, H, W, C] in the model's units (the first ``max_examples``)."""
    x = self.pixels[:max_examples] if max_examples else self.pixels
    return x.astype(np.float32) * np.float32(self.scale) if self.scale != 1.0 \
        else x.astype(np.float32)


def list_images(root: str, labels: bool = False) -> ImageListing:
  """The image files under ``root`` (recursively), sorted.

  Raises:
    FileNotFoundError: ``root`` is not a folder.
    ValueError: it holds no image file (the message lists the extensions),
      or ``labels`` and a file lies directly in ``root`` (no class folder).
  """
  if not os.path.isdir(root):
    raise FileNotFoundError(f"{root}: no such folder (expected a folder of images or an .npz)")
  files = []
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    dirnames.sort()
    for f in filenames:
      if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith("."):
        files.append(os.path.relpath(os.path.join(dirpath, f), root))
  files.sort()
  if not files:
    raise ValueError(f"{root} holds no image files (looked recursively for "
                     f"{', '.join(IMAGE_EXTENSIONS)})")
  if not labels:
    return ImageListing(root, tuple(files))
  top = [f.split(os.sep)[0] if os.sep in f else None for f in files]
  loose = [f for f, t in zip(files, top) if t is None]
  if loose:
    raise ValueError(f"labels from subfolder names: {os.path.join(root, loose[0])} is not in "
                     "a class subfolder (put every image in <root>/<class>/...)")
  class_names = tuple(sorted(set(top)))
  index = {c: i for i, c in enumerate(class_names)}
  return ImageListing(root, tuple(files), np.array([index[t] for t in top], np.int32),
                      class_names)


def read_image(path: str, data_shape: Sequence[int]) -> np.ndarray:
  """One image file as uint8 [H, W, C] of ``data_shape`` (grayscale for C = 1,
  RGB for C = 3; resized with Lanczos if its size differs).

  Raises:
    UnreadableImageError: the file cannot be decoded, naming it.
  """
  from PIL import Image, ImageOps, UnidentifiedImageError
  h, w, c = (int(s) for s in data_shape)
  if c not in (1, 3):
    raise ValueError(f"images need data_shape (H, W, 1) or (H, W, 3), got {tuple(data_shape)}")
  try:
    with Image.open(path) as img:
      img = ImageOps.exif_transpose(img)        # camera photos: as they are shown
      if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or float grey: rescale to 8 bits by the image's own range
        # (a plain convert would clip everything above 255).
        a = np.asarray(img, np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(a.max()), 1.0)
        img = Image.fromarray(np.clip(np.round(a * 255.0 / top), 0, 255).astype(np.uint8))
      img = img.convert("L" if c == 1 else "RGB")
      if img.size != (w, h):
        img = img.resize((w, h), Image.LANCZOS)
      arr = np.asarray(img, np.uint8)
  except (UnidentifiedImageError, OSError, ValueError, SyntaxError,
          Image.DecompressionBombError) as e:
    raise UnreadableImageError(f"cannot read image {path}: {type(e).__name__}: {e}") from None
  return arr.reshape(h, w, c)


def in_validation(names: Sequence[str], fraction: float) -> np.ndarray:
  """bool [N]: which names fall in the validation split (MD5 of the name as a
  fraction in [0, 1), below ``fraction``)."""
  if not 0.0 <= float(fraction) < 1.0:
    raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
  u = np.array([int.from_bytes(hashlib.md5(n.encode()).digest()[:8], "big") / 2.0 ** 64
                for n in names])
  return u < float(fraction)


def split_rows(names: Sequence[str], split: str, fraction: float) -> np.ndarray:
  """Indices of ``names`` in ``split`` ("train", "validation" or "all")."""
  if split not in SPLITS:
    raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
  if split == "all":
    return np.arange(len(names))
  val = in_validation(names, fraction)
  rows = np.flatnonzero(val if split == "validation" else ~val)
  if not len(rows):
    raise ValueError(f"the {split} split of {len(names)} images is empty (validation_fraction "
                     f"{fraction}); use more images or another fraction")
  return rows


def _array_file(path: str) -> np.ndarray:
  """The images of an ``.npy`` (memory-mapped: read as used) or ``.npz``
  (read whole)."""
  if path.endswith(".npy"):
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path}: no such file")
    return np.load(path, mmap_mode="r", allow_pickle=False)
  with np.load(path, allow_pickle=False) as f:
    keys = list(f.files)
  key = next((k for k in ("images", "image", "x") if k in keys), keys[0] if len(keys) == 1 else None)
  if key is None:
    raise ValueError(f"{path} must hold an array named 'images' (or 'image'), or exactly one "
                     f"array; has {keys}")
  return checks.load_npz_array(path, key)


def load_images(path: str, data_shape: Sequence[int], split: str = "all", *,
                validation_fraction: float = 0.1, labels: bool = False,
                num_threads: int | None = None) -> Images:
  """Reads a folder of images, or an ``.npz`` of images, into memory.

  Args:
    path: a folder (searched recursively) or an ``.npz`` file holding
      ``images`` [N, H, W] or [N, H, W, C]: uint8 0..255, or floats (kept as
      they are, e.g. already in [0, 1]).
    data_shape: (H, W, C), C 1 or 3: the shape every image is brought to.
    split: "train", "validation" or "all" (see the module docstring).
    validation_fraction: the share of images in the validation split.
    labels: read class labels from subfolder names (folders only).
    num_threads: threads decoding files (default: the CPU count).

  Returns:
    ``Images`` (uint8 pixels with scale 1/255, or floats with scale 1).

  Raises:
    UnreadableImageError: a file cannot be decoded (named).
    ValueError: no images, a bad shape, or an empty split.
  """
  data_shape = tuple(int(s) for s in data_shape)
  if path.endswith((".npz", ".npy")):
    return Images.from_reader(image_reader(path, data_shape, split,
                                           validation_fraction=validation_fraction))
  listing = list_images(path, labels)
  rows = split_rows(listing.files, split, validation_fraction)
  files = [listing.files[i] for i in rows]
  reader = ImageFileReader(path, files, data_shape, num_threads)
  pixels = reader.read(np.arange(len(files)))
  return Images(pixels, 1.0 / 255.0,
                None if listing.labels is None else listing.labels[rows],
                tuple(files), listing.class_names, where=reader.where)


def _convert(img: np.ndarray, data_shape) -> np.ndarray:
  from PIL import Image
  h, w, c = data_shape
  pil = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
  pil = pil.convert("L" if c == 1 else "RGB").resize((w, h), Image.LANCZOS)
  return np.asarray(pil, np.uint8).reshape(h, w, c)


class ImageFileReader:
  """Random access to image files: ``read(rows) -> uint8 [k, H, W, C]``,
  decoded by a thread pool (PIL releases the GIL while it decodes).

  Args:
    root: the folder the paths are relative to.
    files: the image paths, in row order.
    data_shape: (H, W, C) every image is brought to.
    num_threads: decoding threads (default: the CPU count).
  """

  def __init__(self, root: str, files: Sequence[str], data_shape: Sequence[int],
               num_threads: int | None = None):
    self.root, self.files = root, tuple(files)
    self.names = self.files
    self.example_shape = tuple(int(s) for s in data_shape)
    self.dtype, self.scale = np.dtype(np.uint8), 1.0 / 255.0
    self.num_examples = len(self.files)
    self._pool = ThreadPoolExecutor(num_threads or os.cpu_count() or 1)

  def read(self, rows) -> np.ndarray:
    out = np.empty((len(rows),) + self.example_shape, np.uint8)

    def one(i):
      out[i] = read_image(os.path.join(self.root, self.files[int(rows[i])]), self.example_shape)
    for f in [self._pool.submit(one, i) for i in range(len(rows))]:
      f.result()
    return out

  def where(self, row: int) -> str:
    return os.path.join(self.root, self.files[int(row)])


def image_reader(path: str, data_shape: Sequence[int], split: str = "train", *,
                 validation_fraction: float = 0.1, max_examples: int = 0,
                 num_threads: int | None = None):
  """A reader of one split of a folder (``ImageFileReader``: files decoded on
  demand, nothing held), of an ``.npy`` (memory-mapped: nothing held) or of
  an ``.npz`` (read whole) (``ArrayFileReader``), for the streaming source;
  ``max_examples`` > 0 keeps the first that many."""
  if path.endswith((".npz", ".npy")):
    return ArrayFileReader(path, data_shape, split, validation_fraction=validation_fraction,
                           max_examples=max_examples)
  listing = list_images(path)
  rows = split_rows(listing.files, split, validation_fraction)
  if max_examples:
    rows = rows[:max_examples]
  return ImageFileReader(path, [listing.files[i] for i in rows], data_shape, num_threads)


def sample_max(arr, rows: int = 256) -> int:
  """The largest value among at most ``rows`` rows of ``arr`` spread evenly
  over it (a memory-mapped file pages in only those)."""
  if not len(arr):
    return 0
  picks = np.unique(np.linspace(0, len(arr) - 1, min(rows, len(arr))).astype(np.int64))
  return int(max(int(np.max(arr[i])) for i in picks))


class ArrayFileReader:
  """Random access to one split of an ``.npy`` / ``.npz`` of images
  ([N, H, W] or [N, H, W, C]): uint8 0..255 (scale 1/255; the scale is
  decided by the dtype and range of the whole file, so every split gets the
  same), or floats used as they are. Images of another shape than
  ``data_shape`` (uint8 only) are converted and resized as they are read.
  """

  def __init__(self, path: str, data_shape: Sequence[int], split: str = "all", *,
               validation_fraction: float = 0.1, max_examples: int = 0):
    arr = _array_file(path)
    if arr.ndim == 3:
      arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
      raise ValueError(f"{path}: images must have shape [N, H, W] or [N, H, W, C] with C 1 or "
                       f"3, got {arr.shape}")
    self.example_shape = tuple(int(s) for s in data_shape)
    if arr.shape[1:] != self.example_shape and arr.dtype != np.uint8:
      raise ValueError(f"{path}: images of shape {arr.shape[1:]} must be uint8 to be resized "
                       f"to {self.example_shape}; save them at that shape")
    names = [f"row {i}" for i in range(len(arr))]
    rows = split_rows(names, split, validation_fraction)
    self.rows = rows[:max_examples] if max_examples else rows
    self.names = tuple(names[i] for i in self.rows)
    self.array, self.path = arr, path
    # 0/1 uint8 (binary images) keep scale 1. Decided from a sample of rows
    # spread over the file, so that opening it does not read it whole: a row
    # the sample missed that is not 0/1 is caught when it is read (every
    # batch is checked), naming this file and the row.
    binary = arr.dtype == np.uint8 and sample_max(arr) <= 1
    self.scale = 1.0 / 255.0 if arr.dtype == np.uint8 and not binary else 1.0
    self.dtype = np.dtype(np.uint8) if arr.dtype == np.uint8 else np.dtype(np.float32)
    self.num_examples = len(self.rows)

  def read(self, rows) -> np.ndarray:
    from vae.data import streaming
    out = streaming.read_rows(self.array, self.rows[np.asarray(rows, np.int64)])
    if out.shape[1:] != self.example_shape:
      out = np.stack([_convert(a, self.example_shape) for a in out])
    return out.astype(self.dtype, copy=False)

  def where(self, row: int) -> str:
    return f"row {int(self.rows[int(row)])} of {self.path}"


def _check(settings: base.DataSettings) -> None:
  if not settings.data_dir:
    raise ValueError("dataset='images' needs data_dir: a folder of image files (searched "
                     "recursively) or an .npz holding 'images'")
  if not 0.0 <= float(settings.validation_fraction) < 1.0:
    raise ValueError(f"validation_fraction must be in [0, 1), got "
                     f"{settings.validation_fraction}")
  shape = tuple(settings.data_shape or ())
  if len(shape) != 3 or shape[-1] not in (1, 3):
    raise ValueError("dataset='images' needs model.data_shape (H, W, 1) for grayscale or "
                     f"(H, W, 3) for RGB, got {shape}")
  if settings.label and settings.data_dir.endswith((".npz", ".npy")):
    raise ValueError(f"label={settings.label!r}: class labels are the subfolder names of a "
                     f"folder of images (<root>/<class>/...); {settings.data_dir} is an array file")


def _load_split(split: str, settings: base.DataSettings, max_examples: int = 0) -> np.ndarray:
  """A split as float32 in [0, 1] (images past ``max_examples`` are not read)."""
  return Images.from_reader(image_reader(
      settings.data_dir or "", tuple(settings.data_shape), split,
      validation_fraction=float(settings.validation_fraction),
      max_examples=max_examples)).as_float()


def _open(settings: base.DataSettings) -> base.Opened:
  """Your own images: the training split held on the device (uint8,
  ``Images``) or streamed from the files; the fingerprint adds an MD5 of
  the training files' list (added or removed files change every epoch)."""
  if settings.label:
    return _open_labeled(settings)
  valid = (_load_split(settings.eval_split, settings, settings.eval_examples)
           if settings.with_eval else None)
  if not settings.with_train:
    return base.Opened(None, valid)
  train = image_reader(settings.data_dir, tuple(settings.data_shape), "train",
                       validation_fraction=float(settings.validation_fraction),
                       max_examples=settings.max_train_examples)
  from vae.data import streaming
  source = base.choose_source(settings, streaming.reader_bytes(train))
  fingerprint = {"source": source, "num_train": train.num_examples,
                 "files_md5": hashlib.md5("\n".join(train.names).encode()).hexdigest()}
  if source == "memory":
    train = Images.from_reader(train)
  return base.Opened(train, valid, None, fingerprint)


def balanced_rows(labels: np.ndarray, n: int) -> np.ndarray:
  """The rows of ``n`` examples taken in turn from each class (the first of
  every class, then the second, ...; file order within a class), sorted."""
  labels = np.asarray(labels)
  rank = np.zeros(len(labels), np.int64)
  for c in np.unique(labels):
    rows = np.flatnonzero(labels == c)
    rank[rows] = np.arange(len(rows))
  return np.sort(np.lexsort((labels, rank))[:int(n)])


def _open_labeled(settings: base.DataSettings) -> base.Opened:
  """A folder of images in class subfolders, in memory with its labels
  (the classes numbered in sorted order of the folder names, over both
  splits, as ``torchvision.datasets.ImageFolder``)."""
  def read(split, max_examples):
    images = load_images(settings.data_dir, tuple(settings.data_shape), split,
                         validation_fraction=float(settings.validation_fraction), labels=True)
    if max_examples and int(max_examples) < len(images):
      # Files sort by class folder: the first N would be the first classes
      # only. The first N in turn over the classes keeps them balanced.
      keep = balanced_rows(images.labels, int(max_examples))
      images = dataclasses.replace(images, pixels=images.pixels[keep],
                                   labels=images.labels[keep],
                                   names=tuple(images.names[i] for i in keep))
    return images

  valid = read(settings.eval_split, settings.eval_examples) if settings.with_eval else None
  train = read("train", settings.max_train_examples) if settings.with_train else None
  names = (train if train is not None else valid).class_names
  labels = base.Labels(names, None if train is None else train.labels,
                       None if valid is None else valid.labels)
  fingerprint = {} if train is None else {
      "source": "memory", "num_train": len(train),
      "files_md5": hashlib.md5("\n".join(train.names).encode()).hexdigest(),
      "classes": list(names)}
  return base.Opened(train, None if valid is None else valid.as_float(), None, fingerprint,
                     labels)


DATASETS = (base.DataSet(
    "images", _open, "your own images: a folder of image files, or an .npz/.npy (data_dir)",
    splits=SPLITS, stored_scale=1.0 / 255.0, can_stream=True, load_split=_load_split,
    check=_check, class_labels=True),)
