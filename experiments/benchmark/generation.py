"""Procedural dSprites generation against an in-memory array.

Images/s of rendering dSprites from sampled factors on the device
(``vae.data.dsprites``) against gathering the same number of images, at
random, from an in-memory uint8 array on the device (cast to float32, as
training does).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vae.data.dsprites import DSprites

from .timing import time_it


def _rate(fn, n: int, repeats: int) -> float:
  """Images/s of ``repeats`` calls of ``fn`` on fresh keys (the first,
  untimed, compiles); the calls overlap, only the last is waited for."""
  jax.block_until_ready(fn(jax.random.key(0)))

  def calls():
    for i in range(repeats):
      out = fn(jax.random.key(i + 1))
    return out
  return n * repeats / time_it(calls, warmup=0).best


def bench_generation(batch_sizes: Sequence[int] = (64, 1024), repeats: int = 20) -> list[dict]:
  """[{"batch", "procedural", "in_memory"}] images/s per batch size."""
  ds = DSprites()
  pool = jax.device_put((np.random.default_rng(0).random((20_000, 64, 64, 1)) < 0.05)
                        .astype(np.uint8))
  rows = []
  for n in batch_sizes:
    render = jax.jit(lambda k, n=n: ds.sample(k, n)[0])
    gather = jax.jit(lambda k, n=n: jnp.take(
        pool, jax.random.randint(k, (n,), 0, pool.shape[0]), axis=0).astype(jnp.float32))
    rows.append({"batch": n, "procedural": _rate(render, n, repeats),
                 "in_memory": _rate(gather, n, repeats)})
  return rows
