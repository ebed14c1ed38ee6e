"""The streaming source against the in-memory source (``vae.data.streaming``).

A folder of 64x64x3 PNG files (decoded by a thread pool) and a memory-mapped
``.npy`` of the same images, against the in-memory source, with the same
batches: the examples/s each can feed (no training), and the training
steps/s of the conv VAE and of a small MLP with each; every row repeated
and alternated, reported as ranges.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from vae import model as model_lib
from vae import objectives
from vae import optim
from vae import parallel
from vae import train as train_lib
from vae.data import images, sources, streaming

from .loops import time_scanned
from .timing import alternate, time_it

KINDS = ("in-memory", "stream: PNG files", "stream: memmapped .npy")
SHAPE = (64, 64, 3)


def write_png_folder(root: str, n: int, seed: int = 0) -> np.ndarray:
  """``n`` 64x64 RGB PNGs (a coloured box on a dark ground) under ``root``;
  returns the same images as uint8 [n, 64, 64, 3]."""
  rng = np.random.default_rng(seed)
  imgs = np.full((n,) + SHAPE, 16, np.uint8)
  for i in range(n):
    y, x, h, w = rng.integers(0, 40, 4)
    imgs[i, y:y + 8 + h % 24, x:x + 8 + w % 24] = rng.integers(64, 256, 3)
    sub = os.path.join(root, f"{i % 16:02d}")
    os.makedirs(sub, exist_ok=True)
    Image.fromarray(imgs[i]).save(os.path.join(sub, f"{i:06d}.png"))
  return imgs


def _device_feed(src, chunk: int):
  """A jitted scan drawing ``chunk`` batches of the in-memory source."""
  @jax.jit
  def feed(arrays, start):
    def body(carry, i):
      c, acc = carry
      x, c = src.next(arrays, c, start + i)
      return (c, acc + x.sum()), None     # the whole batch, or XLA gathers one pixel
    return jax.lax.scan(body, (src.init(arrays, start), 0.0), jnp.arange(chunk))[0][1]
  return feed


def feed_rate(src, steps: int, chunk: int) -> float:
  """Examples/s a source delivers with no training: the in-memory source's
  gather and cast inside a scan, or the streaming source's host reads."""
  n = max(1, steps // chunk)
  if getattr(src, "host_fed", False):
    src.host_chunk(0, chunk)

    def reads():
      for i in range(n):
        src.host_chunk((i + 1) * chunk, chunk)
    dt = time_it(reads, warmup=0).best
    src.close()
    return n * chunk * src.batch_size / dt
  arrays = src.arrays()
  feed = _device_feed(src, chunk)
  jax.block_until_ready(feed(arrays, 0))

  def feeds():
    for i in range(n):
      out = feed(arrays, (i + 1) * chunk)
    return out
  return n * chunk * src.batch_size / time_it(feeds, warmup=0).best


def _source_makers(folder: str, pixels: np.ndarray, batch: int, key) -> dict:
  """{kind: () -> a fresh source}, the same images and batches in each."""
  return {
      "in-memory": lambda: sources.ArraySource(pixels, batch, key, scale=1 / 255),
      "stream: PNG files": lambda: streaming.StreamingSource(images.image_reader(
          os.path.join(folder, "png"), SHAPE, "all"), batch, key),
      "stream: memmapped .npy": lambda: streaming.StreamingSource(streaming.ArrayReader(
          np.load(os.path.join(folder, "images.npy"), mmap_mode="r"), 1 / 255), batch, key),
  }


def _models() -> dict:
  return {
      "conv VAE": model_lib.make_model(architecture="conv", data_shape=SHAPE, latent_dim=10,
                                       likelihood="cross_entropy"),
      "MLP 256-256": model_lib.make_model(architecture="mlp", data_shape=SHAPE, latent_dim=10,
                                          encoder_hidden=(256,), decoder_hidden=(256,),
                                          activation="relu", likelihood="cross_entropy")}


def _train_rate(make, step, model, opt, batch: int, steps: int, chunk: int, mesh) -> float:
  """Steps/s of the scanned loop fed by a fresh ``make()`` source, from a
  fresh state (the loop donates it)."""
  state = train_lib.init_state(jax.random.key(0), model, opt)
  return time_scanned(step, make(), state, jax.random.key(2), batch, steps, chunk,
                      mesh)[0]["steps_per_sec"]


def bench_streaming(*, examples: int = 2048, steps: int = 200, repeats: int = 3,
                    batch: int = 64, chunk: int = 50) -> dict:
  """Feed rates and training steps/s of each source, over ``repeats``
  alternating repeats: {"batch", "examples", "cpus", "rows", "models"}, rows
  {source: {"feed": [...], model: [...]}}."""
  tmp = tempfile.mkdtemp(prefix="vae_stream_bench_")
  try:
    pixels = write_png_folder(os.path.join(tmp, "png"), examples)
    np.save(os.path.join(tmp, "images.npy"), pixels)
    make = _source_makers(tmp, pixels, batch, jax.random.key(1))
    feed = alternate({k: lambda k=k: feed_rate(make[k](), 4 * steps, chunk) for k in KINDS},
                     repeats)
    rows = {k: {"feed": feed[k]} for k in KINDS}
    models = _models()
    opt = optim.make_optimizer(1e-4)
    mesh = parallel.make_mesh(jax.devices()[:1])
    for name, model in models.items():
      step = train_lib.make_train_step(objectives.get_objective("vae"), model, opt)
      rates = alternate({k: functools.partial(_train_rate, make[k], step, model, opt, batch,
                                              steps, chunk, mesh) for k in KINDS}, repeats)
      for k in KINDS:
        rows[k][name] = rates[k]
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return {"batch": batch, "examples": examples, "cpus": os.cpu_count(),
          "rows": rows, "models": list(models)}
