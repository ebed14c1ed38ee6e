"""Data-parallel scaling over devices, and throughput by batch size.

Scaling: the MLP VAE 784-500-500-50 on a global batch split across 1, 2, 4,
... devices, scanned loop. The device count is fixed when jax starts, so each
count runs in its own process, this package's worker mode:

  python -m experiments.benchmark --scaling_worker=N --scaling_batch=B --steps=S --chunk=C

which prints one JSON line (``scaling_worker``'s row); on a CPU the parent
sets ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` for it (forced
host devices sharing the CPU's cores).

Sweep: examples/s and TFLOP/s (XLA's cost analysis of one step) of the MLP
and the 64x64 conv VAE by batch size, with the fraction of the device's peak
when it is given; meant for a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Sequence

import jax
import numpy as np

from vae import model as model_lib
from vae import parallel
from vae.data.dsprites import DSprites

from .loops import random_binary_mnist, scanned_rate


def worker_command(devices: int, *, batch: int, steps: int, chunk: int) -> list[str]:
  """The command of one scaling row (see the module docstring)."""
  return [sys.executable, "-m", __package__, f"--scaling_worker={devices}",
          f"--scaling_batch={batch}", f"--steps={steps}", f"--chunk={chunk}"]


def bench_scaling(device_counts: Sequence[int], *, batch: int = 512, steps: int = 3000,
                  chunk: int = 500) -> list[dict]:
  """One row per device count, each from its own worker process."""
  rows = []
  for d in device_counts:
    env = dict(os.environ)
    if jax.default_backend() == "cpu":
      env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={int(d)}"
    out = subprocess.run(worker_command(int(d), batch=batch, steps=steps, chunk=chunk),
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
      raise RuntimeError(out.stderr[-2000:])
    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
  return rows


def scaling_worker(n: int, *, batch: int = 512, steps: int = 3000, chunk: int = 500) -> dict:
  """The scaling row of this process's first ``n`` devices."""
  devices = jax.devices()
  if len(devices) < n:
    raise ValueError(f"asked for {n} devices, have {len(devices)}")
  model = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1), latent_dim=50,
                               encoder_hidden=(500, 500), decoder_hidden=(500, 500))
  data = random_binary_mnist(np.random.default_rng(0), 20_000)
  r = scanned_rate(model, batch, data, steps, chunk, parallel.make_mesh(devices[:n]))
  return {"devices": n, "platform": jax.default_backend(), **r}


def _sweep_model(arch: str, compute_dtype: str, mnist: np.ndarray):
  """(model, data) of one sweep entry: "mlp" (784-500-500-50 on MNIST-shaped
  noise) or "conv" (64x64x1 on procedural dSprites)."""
  if arch == "mlp":
    return model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1), latent_dim=50,
                                encoder_hidden=(500, 500), decoder_hidden=(500, 500),
                                compute_dtype=compute_dtype), mnist
  return model_lib.make_model(architecture="conv", data_shape=(64, 64, 1), latent_dim=10,
                              compute_dtype=compute_dtype), DSprites()


def bench_sweep(models: Sequence[str], batch_sizes: Sequence[int], *, steps: int = 3000,
                chunk: int = 500, compute_dtype: str = "float32",
                peak_tflops: float = 0.0) -> list[dict]:
  """One row per (model, batch size), scanned loop."""
  rows = []
  mnist = random_binary_mnist(np.random.default_rng(0), 20_000)
  for arch in models:
    for b in batch_sizes:
      model, data = _sweep_model(arch, compute_dtype, mnist)
      r = scanned_rate(model, b, data, steps, chunk)
      tflops = r["flops_per_step"] * r["steps_per_sec"] / 1e12
      r.update({"model": arch, "batch": b, "tflops": tflops,
                "fraction_of_peak": tflops / peak_tflops if peak_tflops else None})
      rows.append(r)
  return rows
