"""Streaming training data: batches read on the host, for data larger than memory.

``StreamingSource`` serves the same order as ``vae.data.sources.ArraySource``
(epoch ``e`` visits ``permutation(fold_in(data_key, e), N)`` in batches of
``batch_size``, the partial batch dropped), but reads each batch's examples
from a *reader* on the host when it is needed instead of holding the data on
the device:

* ``ArrayReader``: a host array, or a memory-mapped ``.npy`` (larger than
  memory; the OS pages it in).
* ``vae.data.images.ImageFileReader``: a folder of image files, decoded by a
  thread pool.
* ``TfdsReader``: a tensorflow-datasets set by random access
  (``tfds.data_source``; the set must be prepared in the ``array_record``
  format).

A reader has ``num_examples``, ``example_shape``, ``dtype``, ``scale`` (the
model sees ``values * scale``), ``read(rows) -> [k, *example_shape]`` and
``where(row)``, which names a row as its source knows it (a file, a row of a
file) for error messages.

Every batch is checked as it is read, on the host, with the checks data in
memory gets (``vae.checks.check_data``: shape, finite values, what the
likelihood can score), and a bad value is reported at the file and row it
came from (``StreamingSource(check=...)``; ``vae.data.sources.make_source``
passes the model's).

Several processes (``jax.distributed``): each reads only the rows of the
global batch that its own devices hold (``shard_rows``), and the training
loop assembles them into one global array.

Prefetch: a background thread reads the batches of the coming steps into a
bounded queue (``prefetch`` batches); the training loop takes them a chunk
of at most ``vae.train.STREAM_CHUNK_STEPS`` steps at a time
(``device_chunk``), and assembles the next chunk while the device trains on
the current one, so reading overlaps training.

Resuming: the batch of step ``s`` is a function of ``s`` alone, so the data
position is the checkpointed step: a run restarted from a checkpoint at step
``s`` reads exactly the examples an uninterrupted run reads from ``s`` on.
``position(step)`` says where that is (epoch, example offset).
"""

from __future__ import annotations

import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from vae import checks, parallel


class ArrayReader:
  """Random access to a host array [N, *shape] (e.g. ``np.load(path,
  mmap_mode="r")`` of an ``.npy``, which pages in only what is read)."""

  def __init__(self, array, scale: float = 1.0, origin: str = ""):
    self.array, self.origin = array, origin
    self.num_examples = int(array.shape[0])
    self.example_shape = tuple(int(s) for s in array.shape[1:])
    self.dtype, self.scale = np.dtype(array.dtype), float(scale)

  def read(self, rows) -> np.ndarray:
    return read_rows(self.array, rows)

  def where(self, row: int) -> str:
    return f"row {int(row)}" + (f" of {self.origin}" if self.origin else "")


def read_rows(array, rows) -> np.ndarray:
  """``array[rows]``, read in ascending row order (sequential reads of a
  memory-mapped file) and returned in the order asked."""
  rows = np.asarray(rows, np.int64)
  order = np.argsort(rows, kind="stable")
  out = np.empty((len(rows),) + tuple(array.shape[1:]), array.dtype)
  out[order] = array[rows[order]]
  return out


class TfdsReader:
  """Random access to a tensorflow-datasets set through ``tfds.data_source``.

  Args:
    name: the tfds name ("shapes3d", "dsprites", ...).
    split: the tfds split.
    data_dir: tfds data_dir.
    image: the image feature.
    resize: square side to resize to (None: keep), with PIL's Lanczos.
    scale: a stored pixel times this is in [0, 1].

  Raises:
    ValueError: the set is not prepared in the ``array_record`` format (the
      message gives the command that converts it).
  """

  def __init__(self, name: str, split: str = "train", data_dir: str | None = None,
               image: str = "image", resize: int | None = None, scale: float = 1.0 / 255.0):
    import tensorflow_datasets as tfds  # lazy: `import vae` never loads TF
    try:
      self.source = tfds.data_source(name, split=split, data_dir=data_dir)
    except Exception as e:  # tfds raises several types; say which case this is
      raise ValueError(f"tfds {name}[{split}] cannot be read by random access "
                       f"({type(e).__name__}: {e}); {random_access_hint(name, data_dir)}") \
          from None
    self.name, self.split, self.image, self.resize = name, split, image, resize
    self._pool = ThreadPoolExecutor(os.cpu_count() or 1)
    self.num_examples = len(self.source)
    shape = tuple(tfds.builder(name, data_dir=data_dir).info.features[image].shape)
    self.example_shape = (resize, resize) + shape[2:] if resize else shape
    self.dtype = np.dtype(np.uint8)
    self.scale = float(scale)

  def read(self, rows) -> np.ndarray:
    rows = [int(r) for r in np.asarray(rows)]
    examples = read_examples(self.source, rows, self._pool)
    images = np.stack([np.asarray(e[self.image]) for e in examples])
    if self.resize and images.shape[1:3] != (self.resize, self.resize):
      from vae.data.tfds_ground_truth import resize_images
      images = resize_images(images, self.resize)
    return images.astype(np.uint8).reshape((len(rows),) + self.example_shape)

  def where(self, row: int) -> str:
    return f"example {int(row)} of tfds {self.name}[{self.split}]"


def read_examples(source, rows, pool=None) -> list:
  """``[source[r] for r in rows]`` of a tfds data source, batched
  (``__getitems__``) where the source supports it, else on ``pool``."""
  get = getattr(source, "__getitems__", None)
  if get is not None:
    try:
      return list(get(rows))
    except TypeError:   # tfds.testing.mock_data's source lacks a working one
      pass
  if pool is None:
    return [source[r] for r in rows]
  return list(pool.map(source.__getitem__, rows))


def _prepared_format(name: str, data_dir: str | None) -> tuple[bool, str] | None:
  """(whether tfds set ``name`` is prepared in ``data_dir``, its file format),
  or None when its builder cannot be made (unknown name, unreadable folder)."""
  import tensorflow_datasets as tfds
  try:
    info = tfds.builder(name, data_dir=data_dir).info
  except Exception:
    return None
  return bool(info.splits), str(getattr(info, "file_format", "") or "")


def random_access_hint(name: str, data_dir: str | None) -> str:
  """What to do when a tfds set cannot be read by random access."""
  found = _prepared_format(name, data_dir)
  if found is None:  # the error it is appended to says what went wrong
    return "check the name and tfds_data_dir"
  prepared, fmt = found
  if not prepared:
    return (f"it is not prepared in {data_dir or 'the default tfds data_dir'}: prepare it for "
            f"streaming with `tfds build {name} --file_format=array_record"
            f"{' --data_dir ' + data_dir if data_dir else ''}`")
  if "array_record" not in fmt:
    return (f"it is prepared as {fmt or 'tfrecord'}, which tfds reads only in sequence: "
            "convert it with `tfds convert_format --root_data_dir <data_dir> "
            f"--out_file_format array_record`, or prepare it with `tfds build {name} "
            "--file_format=array_record`")
  return "see the tfds error above"


def is_random_access(name: str, data_dir: str | None) -> bool:
  """Whether tfds set ``name`` is prepared in a format read by random access."""
  found = _prepared_format(name, data_dir)
  return found is not None and found[0] and "array_record" in found[1]


def _on_host(draw, data_key: jax.Array) -> np.ndarray:
  """``draw(data_key)`` computed on this process's CPU (threefry bits: the
  same numbers as on any backend), as a host array."""
  cpu = jax.local_devices(backend="cpu")[0]
  with jax.default_device(cpu):
    return np.asarray(draw(jax.device_put(data_key, cpu)))


def epoch_permutation(data_key: jax.Array, epoch: int, n: int) -> np.ndarray:
  """The order of epoch ``epoch``: ``ArraySource``'s permutation, computed on
  the host CPU (threefry bits and a sort: the same on every backend)."""
  return _on_host(lambda k: jax.random.permutation(jax.random.fold_in(k, int(epoch)), int(n)),
                  data_key)


def shard_rows(batch_size: int, mesh) -> tuple[int, int]:
  """[start, stop) of the global batch rows this process's devices hold
  under the batch sharding of ``mesh`` (the whole batch on one process)."""
  if mesh is None or jax.process_count() == 1:
    return 0, int(batch_size)
  idx = NamedSharding(mesh, P(parallel.DATA_AXIS)).addressable_devices_indices_map(
      (int(batch_size),))
  starts = [s[0].start or 0 for s in idx.values()]
  stops = [s[0].stop if s[0].stop is not None else batch_size for s in idx.values()]
  lo, hi = min(starts), max(stops)
  if sum(b - a for a, b in set(zip(starts, stops))) != hi - lo:
    raise ValueError(f"this process's devices hold non-contiguous batch rows {sorted(zip(starts, stops))}")
  return lo, hi


class StreamingSource:
  """Host-read batches, fed to the device ``log_every`` steps at a time.

  Same source contract as ``ArraySource`` (``init``/``next`` inside the
  loop), with ``host_fed = True``: the loop gets the arrays of each chunk of
  steps from ``device_chunk(step, n, mesh)`` instead of ``arrays()``.

  Args:
    reader: see the module docstring.
    batch_size: the global batch size.
    data_key: the run's data key.
    prefetch: batches read ahead by the background thread (bounded queue).
    sampling: "epochs": shuffled epochs, ``ArraySource``'s order; "uniform":
      every batch drawn uniformly with replacement, rows
      ``randint(fold_in(data_key, step), B, 0, N)``, as disentanglement_lib
      samples ground-truth sets (and ``GroundTruthSource`` does on the device).
    check: ``check(batch, rows)``, called on every batch as it is read (its
      rows: the reader's), raises on bad data; the error reaches the training
      loop at that batch's step.
  """

  host_fed = True

  def __init__(self, reader, batch_size: int, data_key: jax.Array, prefetch: int = 8,
               sampling: str = "epochs", check=None):
    self.check = check
    if sampling not in ("epochs", "uniform"):
      raise ValueError(f"sampling must be 'epochs' or 'uniform', got {sampling!r}")
    self.sampling = sampling
    self.reader = reader
    self.num_examples = int(reader.num_examples)
    self.batch_size = int(batch_size)
    if not 1 <= self.batch_size <= self.num_examples:
      raise ValueError(f"batch_size must be in [1, {self.num_examples}] (the number of "
                       f"examples), got {batch_size}")
    if int(prefetch) < 1:
      raise ValueError(f"prefetch must be >= 1 batch, got {prefetch}")
    self.steps_per_epoch = self.num_examples // self.batch_size
    self.data_key = data_key
    self.prefetch = int(prefetch)
    self.scale = float(reader.scale)
    self._perms: dict[int, np.ndarray] = {}
    self._thread = None
    self._queue = None
    self._stop = None
    self._next_step = None
    self._rows = (0, self.batch_size)

  # -------------------------------------------------------------- host side
  def position(self, step: int) -> tuple[int, int]:
    """Where a run resumed at ``step`` starts reading: (epoch, index of the
    step's first example in that epoch's order); with uniform sampling,
    (the number of examples drawn so far // N, that number % N)."""
    if self.sampling == "uniform":
      return divmod(int(step) * self.batch_size, self.num_examples)
    epoch, pos = divmod(int(step), self.steps_per_epoch)
    return epoch, pos * self.batch_size

  def _perm(self, epoch: int) -> np.ndarray:
    if epoch not in self._perms:
      self._perms = {epoch: epoch_permutation(self.data_key, epoch, self.num_examples)}
    return self._perms[epoch]

  def batch_rows(self, step: int) -> np.ndarray:
    """The data rows of the global batch of ``step``."""
    if self.sampling == "uniform":
      return _on_host(lambda k: jax.random.randint(jax.random.fold_in(k, int(step)),
                                                   (self.batch_size,), 0, self.num_examples),
                      self.data_key)
    epoch, pos = divmod(int(step), self.steps_per_epoch)
    return self._perm(epoch)[pos * self.batch_size:(pos + 1) * self.batch_size]

  def host_batch(self, step: int, rows: tuple[int, int] | None = None) -> np.ndarray:
    """Rows ``[start, stop)`` (default: all) of the batch of ``step``, as
    stored ([k, *example_shape], the reader's dtype)."""
    lo, hi = rows or (0, self.batch_size)
    rows = self.batch_rows(step)[lo:hi]
    batch = self.reader.read(rows)
    if self.check is not None:
      self.check(batch, rows)
    return batch

  def examples(self, key: jax.Array, n: int) -> np.ndarray:
    """``n`` distinct examples, rows ``permutation(key, N)[:n]`` read now
    (and checked), as float32 scaled as the batches are."""
    checks.check_example_count(n, self.num_examples)
    rows = _on_host(lambda k: jax.random.permutation(k, self.num_examples)[:int(n)], key)
    x = self.reader.read(rows)
    if self.check is not None:
      self.check(x, rows)
    return x.astype(np.float32) * np.float32(self.scale)

  def _produce(self, start: int, q: queue.Queue, stop: threading.Event, rows):
    def put(item) -> bool:
      # Never blocks for good: a stopped source drops what it was handing over.
      while not stop.is_set():
        try:
          q.put(item, timeout=0.1)
          return True
        except queue.Full:
          continue
      return False
    step = start
    while not stop.is_set():
      try:
        item = (step, self.host_batch(step, rows))
      except BaseException as e:  # handed to the consumer, which raises it
        put((step, e))
        return
      if not put(item):
        return
      step += 1

  def _restart(self, step: int, rows) -> None:
    self.close()
    self._queue, self._stop = queue.Queue(self.prefetch), threading.Event()
    self._thread = threading.Thread(target=self._produce, daemon=True,
                                    args=(step, self._queue, self._stop, rows))
    self._thread.start()
    self._next_step, self._rows = step, rows

  def host_chunk(self, step: int, n: int, rows: tuple[int, int] | None = None) -> np.ndarray:
    """[n, k, *example_shape]: this process's rows of steps ``step .. step+n-1``,
    from the prefetch queue (restarted if ``step`` is not the next one)."""
    rows = rows or (0, self.batch_size)
    if self._thread is None or self._next_step != step or self._rows != rows:
      self._restart(step, rows)
    out = []
    for _ in range(int(n)):
      got_step, batch = self._queue.get()
      if isinstance(batch, BaseException):
        self._thread = None
        raise batch
      assert got_step == self._next_step, (got_step, self._next_step)
      self._next_step += 1
      out.append(batch)
    return np.stack(out)

  def device_chunk(self, step: int, n: int, mesh=None):
    """The loop's arrays for steps ``step .. step+n-1``: a tuple holding one
    [n, B, *example_shape] array, its batch axis split across ``mesh``'s
    ``data`` axis (each process supplies its own rows)."""
    rows = shard_rows(self.batch_size, mesh)
    local = self.host_chunk(step, n, rows)
    if mesh is None or mesh.size == 1:
      return (jnp.asarray(local),)
    sharding = NamedSharding(mesh, P(None, parallel.DATA_AXIS))
    shape = (int(n), self.batch_size) + local.shape[2:]
    if jax.process_count() == 1:
      return (jax.device_put(local, sharding),)
    return (jax.make_array_from_process_local_data(sharding, local, shape),)

  def close(self) -> None:
    """Stops the prefetch thread (a later chunk starts it again); returns
    once it has stopped (at most one read later)."""
    if self._thread is not None:
      self._stop.set()
      while self._thread.is_alive():
        try:
          self._queue.get_nowait()
        except queue.Empty:
          pass
        self._thread.join(timeout=0.05)
    self._thread = None

  # ------------------------------------------------------------ device side
  def arrays(self):
    raise TypeError("StreamingSource is host-fed: the loop takes device_chunk(step, n, mesh) "
                    "in place of arrays()")

  def init(self, arrays, step):
    return jnp.zeros((), jnp.int32)

  def next(self, arrays, i, step):
    x = arrays[0][i].astype(jnp.float32)
    return (x * self.scale if self.scale != 1.0 else x), i + 1


def reader_bytes(reader) -> int:
  """Bytes the reader's data would take held whole (as stored)."""
  return int(reader.num_examples) * int(np.prod(reader.example_shape)) * reader.dtype.itemsize


def memory_budget_bytes(device=None) -> int:
  """The memory of ``device`` (default: the first), for the automatic choice
  of source: an accelerator's ``bytes_limit``, or the host's physical RAM."""
  device = device or jax.devices()[0]
  stats = None
  try:
    stats = device.memory_stats()
  except Exception:  # CPU devices may not report
    pass
  if stats and stats.get("bytes_limit"):
    return int(stats["bytes_limit"])
  return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


# The data may take this share of a device's memory before "auto" streams it.
AUTO_STREAM_FRACTION = 0.25


def choose_source(kind: str, nbytes: int, device=None) -> str:
  """"memory" or "stream" for the config value ``kind`` ("auto", "memory" or
  "stream"): "auto" streams data over ``AUTO_STREAM_FRACTION`` of the
  device's memory (``memory_budget_bytes``), where it would crowd out the
  model's activations, and keeps smaller data on the device, the faster
  path."""
  if kind not in ("auto", "memory", "stream"):
    raise ValueError(f"data_source must be 'auto', 'memory' or 'stream', got {kind!r}")
  if kind != "auto":
    return kind
  return "stream" if nbytes > AUTO_STREAM_FRACTION * memory_budget_bytes(device) else "memory"
