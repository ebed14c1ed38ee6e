"""Training-loop throughput: the scanned loop against the per-step loop.

The 784-H-H-L MLP VAE on binarized MNIST (or random binary images of the
same shape: the speed does not depend on the pixel values), two ways in the
same process, on the same data and the same steps:

* scanned: ``vae.train.make_scan_loop``, data on the device, batches drawn
  inside one ``lax.scan`` of ``chunk`` steps; no Python between steps.
* per-step: ``vae.train.jit_train_step`` called from Python once per step,
  each batch gathered on the host (numpy) and transferred (the usual loop).

``time_scanned`` and ``scanned_rate`` also serve the other families
(streaming, scaling, the batch sweep, the PyTorch comparison).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from vae import model as model_lib
from vae import objectives
from vae import optim
from vae import parallel
from vae import train as train_lib
from vae.data import binarized_mnist, sources

from .timing import Carried, time_it


def random_binary_mnist(rng: np.random.Generator, n: int) -> np.ndarray:
  """[n, 28, 28, 1] uint8 noise with MNIST's fraction of ink (speed does not
  depend on the pixel values)."""
  return (rng.random((n, 28, 28, 1)) < 0.13).astype(np.uint8)


def mnist_data(data_dir: str = "") -> tuple[np.ndarray, np.ndarray]:
  """(train, validation) binarized MNIST from ``data_dir``; without one,
  random binary images of the same shapes (50,000 and 10,000)."""
  if data_dir:
    return (binarized_mnist.load("train", data_dir),
            binarized_mnist.load("validation", data_dir))
  rng = np.random.default_rng(0)
  return random_binary_mnist(rng, 50_000), random_binary_mnist(rng, 10_000)


def time_scanned(step, src, state, train_key, batch_size: int, steps: int, chunk: int,
                 mesh) -> tuple[dict, object]:
  """Times ``make_scan_loop`` on ``mesh``: one warm-up (compiling) chunk, then
  ``steps // chunk`` (at least one) timed chunks. A host-fed (streaming)
  source gives each chunk's arrays, read ahead by its thread, as in
  ``vae.train.train``. Returns (figures, state)."""
  run = train_lib.make_scan_loop(step, src, mesh)
  host_fed = getattr(src, "host_fed", False)
  arrays = None if host_fed else parallel.replicate(src.arrays(), mesh)
  key = parallel.replicate(train_key, mesh)

  def advance(state, i):
    return run(state, src.device_chunk(i * chunk, chunk, mesh) if host_fed else arrays,
               key, chunk)
  loop = Carried(advance, parallel.replicate(state, mesh))
  jax.block_until_ready(loop.run(1)())              # compile
  n = max(1, steps // chunk)
  dt = time_it(loop.run(n), warmup=0).best
  if host_fed:
    src.close()
  return {"steps": n * chunk, "seconds": dt,
          "examples_per_sec": n * chunk * batch_size / dt,
          "steps_per_sec": n * chunk / dt,
          "final_loss": float(np.asarray(loop.metrics["loss"])[-1])}, loop.state


def scanned_rate(model, batch_size: int, data, steps: int, chunk: int, mesh=None) -> dict:
  """``time_scanned`` figures of a fresh VAE on ``data`` (an array or a
  ground-truth data set), plus its FLOPs per step."""
  opt = optim.make_optimizer(1e-4)
  step = train_lib.make_train_step(objectives.get_objective("vae"), model, opt)
  src = (sources.GroundTruthSource(data, batch_size, jax.random.key(1))
         if not isinstance(data, np.ndarray) else
         sources.ArraySource(data, batch_size, jax.random.key(1)))
  state = train_lib.init_state(jax.random.key(0), model, opt)
  # FLOPs of ONE step from a plain jitted step: XLA's cost analysis counts a
  # while-loop body once, whatever the trip count.
  batch = jax.ShapeDtypeStruct((batch_size,) + tuple(model.data_shape), jnp.float32)
  cost = jax.jit(step).lower(state, batch, jax.random.key(2)).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  figures, _ = time_scanned(step, src, state, jax.random.key(2), batch_size, steps, chunk,
                            mesh or parallel.make_mesh())
  return {"examples_per_sec": figures["examples_per_sec"],
          "steps_per_sec": figures["steps_per_sec"],
          "flops_per_step": float((cost or {}).get("flops", 0.0))}


def _time_per_step(step, src, state, train_key, batch_size: int, steps: int,
                   warmup: int) -> dict:
  """Host batches, one jitted call per step: ``warmup`` steps, then ``steps``
  timed steps (step ``s`` keyed ``fold_in(train_key, s)``)."""
  jstep = train_lib.jit_train_step(step)
  batches = src.host_batches(0)
  loop = Carried(lambda st, s: jstep(st, next(batches), jax.random.fold_in(train_key, s)),
                 state)
  jax.block_until_ready(loop.run(warmup)())
  dt = time_it(loop.run(steps), warmup=0).best
  return {"steps": steps, "seconds": dt, "examples_per_sec": steps * batch_size / dt,
          "final_loss": float(loop.metrics["loss"])}


def bench_training(train_data: np.ndarray, hidden: tuple[int, ...], *, latent_dim: int = 50,
                   batch_size: int = 100, steps: int = 3000, chunk: int = 500) -> dict:
  """examples/s of the scanned and the per-step loop of the 784-``hidden``-
  ``latent_dim`` tanh MLP VAE; same steps, same data, one device."""
  model = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1),
                               latent_dim=latent_dim, encoder_hidden=hidden,
                               decoder_hidden=hidden, activation="tanh")
  opt = optim.make_optimizer(1e-3, eps=1e-4)
  step = train_lib.make_train_step(objectives.get_objective("vae"), model, opt)
  keys = train_lib.named_keys(0)
  src = sources.ArraySource(train_data, batch_size, keys["data"])
  results = {}
  results["scanned"], _ = time_scanned(
      step, src, train_lib.init_state(keys["init"], model, opt), keys["train"],
      batch_size, steps, chunk, parallel.make_mesh(jax.devices()[:1]))
  results["per_step"] = _time_per_step(
      step, src, train_lib.init_state(keys["init"], model, opt), keys["train"], batch_size,
      results["scanned"]["steps"], warmup=chunk)   # the scanned loop's steps and warm-up
  results["speedup_scanned_over_per_step"] = (
      results["scanned"]["examples_per_sec"] / results["per_step"]["examples_per_sec"])
  return results
