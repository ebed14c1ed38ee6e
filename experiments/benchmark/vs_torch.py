"""Our training step against the same step in PyTorch eager.

The same network, loss and optimizer (Adam) in both, random binary images
held in memory, one shuffled batch per step; PyTorch's side is
``experiments/torch_peer.py``. Every measurement is a fresh process, on all
cores or pinned to the first n (``taskset -c 0-(n-1)``), repeated and
alternated; ours is this package's worker mode

  python -m experiments.benchmark --step_worker=NAME

(NAME a key of ``PEER_MODELS``), which prints one JSON line: the scanned
loop's and the per-step loop's examples/s, XLA's FLOPs of one step and the
best f32 GEMM rate of the same process (the machine's practical peak).
PyTorch is needed only by the peer's process, never imported here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vae import model as model_lib
from vae import objectives
from vae import optim
from vae import train as train_lib
from vae.data import sources

from .loops import scanned_rate
from .timing import Carried, alternate, time_it

# The repository root (the peers run from there) and the package of
# torch_peer (experiments, or vae_experiments when installed).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPERIMENTS = __package__.rpartition(".")[0]

PEER_MODELS = {
    "conv": dict(model=dict(architecture="conv", data_shape=(64, 64, 1), latent_dim=10),
                 batch=64, steps=60, torch=["--arch", "conv", "--latent", "10"]),
    "mlp500": dict(model=dict(architecture="mlp", data_shape=(28, 28, 1), latent_dim=50,
                              encoder_hidden=(500, 500), decoder_hidden=(500, 500),
                              activation="tanh"),
                   batch=100, steps=600, torch=["--arch", "mlp", "--input", "784", "--hidden",
                                                "500,500", "--latent", "50"]),
    "mlp1200": dict(model=dict(architecture="mlp", data_shape=(64, 64, 1), latent_dim=10,
                               encoder_hidden=(1200, 1200), decoder_hidden=(1200, 1200),
                               activation="relu"),
                    batch=64, steps=200, torch=["--arch", "mlp", "--input", "4096", "--hidden",
                                                "1200,1200", "--latent", "10", "--activation",
                                                "relu"]),
}


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
  """The best f32 GEMM rate (n x n x n) of this process's devices: the
  machine's practical peak, against which a step's FLOP rate is a fraction."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  return time_it(lambda: f(a), repeats=repeats).rate(2 * n ** 3) / 1e9


def _per_step_rate(model, data: np.ndarray, batch: int, steps: int, warmup: int) -> float:
  """Examples/s of ``make_step_loop`` (one jitted step per step, batches
  drawn on the device): ``warmup`` steps, then ``steps`` timed."""
  opt = optim.make_optimizer(1e-4)
  step = train_lib.make_train_step(objectives.get_objective("vae"), model, opt)
  src = sources.ArraySource(data, batch, jax.random.key(1))
  run = train_lib.make_step_loop(step, src)
  loop = Carried(lambda st, i: run(st, src.arrays(), jax.random.key(2),
                                   warmup if i == 0 else steps),
                 train_lib.init_state(jax.random.key(0), model, opt))
  jax.block_until_ready(loop.run(1)())
  return steps * batch / time_it(loop.run(1), warmup=0).best


def step_worker(name: str) -> dict:
  """Our step for one ``PEER_MODELS`` entry: the scanned loop (what ``train``
  runs) and the per-step loop, with XLA's FLOPs per step and the GEMM peak."""
  spec = PEER_MODELS[name]
  model = model_lib.make_model(**spec["model"])
  shape = spec["model"]["data_shape"]
  data = (np.random.default_rng(0).random((5000,) + tuple(shape)) < 0.5).astype(np.uint8)
  batch, steps = spec["batch"], spec["steps"]
  chunk = max(1, steps // 3)
  r = scanned_rate(model, batch, data, steps, chunk)
  r["per_step_examples_per_sec"] = _per_step_rate(model, data, batch, steps, chunk)
  r["matmul_gflops"] = matmul_gflops()
  return r


def missing_requirements(cores: Sequence[str]) -> str | None:
  """Why ``bench_vs_torch`` cannot run here, or None."""
  if importlib.util.find_spec("torch") is None:
    return "--vs_torch needs PyTorch: pip install torch (a CPU build is enough)"
  if any(c != "all" for c in cores) and not shutil.which("taskset"):
    return "--cores n needs taskset (util-linux)"
  return None


def _pinned(cmd: list[str], cores: str) -> list[str]:
  """``cmd`` pinned to CPUs 0..n-1 with taskset (unchanged for 'all')."""
  return cmd if cores == "all" else ["taskset", "-c", f"0-{int(cores) - 1}", *cmd]


def _run_json(cmd: list[str], cores: str) -> dict:
  """The last stdout line, as JSON, of ``cmd`` run from the repository root."""
  out = subprocess.run(_pinned(cmd, cores), cwd=ROOT, capture_output=True, text=True)
  if out.returncode != 0:
    raise RuntimeError(" ".join(cmd) + "\n" + out.stderr[-3000:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def _row(name: str, cores: str, ours: list[dict], theirs: list[dict]) -> dict:
  scanned = [o["examples_per_sec"] for o in ours]
  torch_rate = [t["examples_per_sec"] for t in theirs]
  flops = ours[0]["flops_per_step"]
  gflops = [o["steps_per_sec"] * flops / 1e9 for o in ours]
  peak = [o["matmul_gflops"] for o in ours]
  return {"model": name, "cores": cores, "batch": PEER_MODELS[name]["batch"],
          "ours_scanned": scanned, "ours_per_step": [o["per_step_examples_per_sec"] for o in ours],
          "torch": torch_rate,
          "ratio_scanned_over_torch": [a / b for a, b in zip(scanned, torch_rate)],
          "flops_per_step": flops, "gflops": gflops, "matmul_peak_gflops": peak,
          "fraction_of_peak": [g / p for g, p in zip(gflops, peak)],
          "torch_version": theirs[0]["torch"]}


def bench_vs_torch(models: Sequence[str] = ("conv", "mlp500", "mlp1200"),
                   cores: Sequence[str] = ("all", "1"), repeats: int = 3) -> list[dict]:
  """Rows of (model, cores): ours (scanned and per-step) and PyTorch eager,
  each measured ``repeats`` times, alternating, in fresh processes."""
  problem = missing_requirements(cores)
  if problem:
    raise RuntimeError(problem)
  rows = []
  for name in models:
    spec = PEER_MODELS[name]
    ours = [sys.executable, "-m", __package__, f"--step_worker={name}"]
    theirs = [sys.executable, "-m", f"{EXPERIMENTS}.torch_peer", *spec["torch"],
              "--batch", str(spec["batch"]), "--steps", str(max(20, spec["steps"] // 2))]
    for c in cores:
      runs = alternate({"ours": lambda c=c: _run_json(ours, c),
                        "theirs": lambda c=c: _run_json(theirs, c)}, repeats)
      rows.append(_row(name, c, runs["ours"], runs["theirs"]))
  return rows
