"""Startup and shutdown of a run, timed from outside (--startup): the seconds
from the command to the first training step, and from the last step to the
process's exit, for the short beta-VAE job (``--config default``, 700 steps)
and a 10-step conv run on your own images (``vae_images``), each in a fresh
process and workdir.

The first step is the first row of ``metrics.jsonl`` (the run is given
``--config.log_every=1``, so the row appears right after step 1); the last
step is the last row to appear; the watcher polls the file every 20 ms. This
needs nothing from the code under test, so the same measurement runs on an
older checkout (``--startup_baseline=PATH``, a checkout or worktree of the
repository) beside this one, in one run on one machine. "This code" is
timed twice: with the persistent compilation cache empty (a first run) and
filled by that run (every later run); the baseline has no such cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# (name, the job's flags); the images job gets --config.data_dir added.
JOBS = {
    "default": ("beta-VAE job (--config default, 700 steps)", ["--config", "default"]),
    "images": ("vae_images, 10 steps", ["--config", "vae_images", "--config.num_steps=10",
                                        "--config.checkpoint_every=10",
                                        "--config.eval_every=0"]),
}


def _import_root(tree: str, scratch: str) -> str:
  """A folder that makes ``tree``'s code importable as ``vae``, ``experiments``
  and ``vae_experiments`` (its config files import the last), whatever is
  installed."""
  root = os.path.join(scratch, "path-" + str(abs(hash(tree))))
  os.makedirs(root, exist_ok=True)
  for name, target in (("vae", "vae"), ("experiments", "experiments"),
                       ("vae_experiments", "experiments")):
    link = os.path.join(root, name)
    if not os.path.exists(link):
      os.symlink(os.path.join(tree, target), link)
  return root


def write_images(folder: str, n: int = 300) -> str:
  """``n`` 64x64 RGB PNGs of coloured dSprites shapes."""
  import jax
  import numpy as np
  from PIL import Image
  from vae.data import dsprites
  os.makedirs(folder, exist_ok=True)
  x = np.asarray(dsprites.DSprites().sample(jax.random.key(0), n)[0])
  colours = np.random.default_rng(0).integers(60, 256, (n, 3))
  for i in range(n):
    Image.fromarray((x[i] * colours[i]).astype(np.uint8)).save(
        os.path.join(folder, f"{i:03d}.png"))
  return folder


def time_run(tree: str, args: list[str], workdir: str, scratch: str,
             env: dict | None = None) -> dict:
  """Runs ``python -m experiments.train`` of ``tree`` with ``args``; returns
  the seconds to the first and from the last metrics row, and the total."""
  metrics = os.path.join(workdir, "metrics.jsonl")
  environ = dict(os.environ, PYTHONPATH=_import_root(tree, scratch), **(env or {}))
  cmd = [sys.executable, "-m", "experiments.train", "--workdir", workdir, *args,
         "--config.log_every=1"]
  t0 = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=tree, env=environ, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
  first = last = None
  rows = 0
  while proc.poll() is None:
    if os.path.exists(metrics):
      with open(metrics) as f:
        n = sum(1 for _ in f)
      now = time.perf_counter() - t0
      if n and first is None:
        first = now
      if n != rows:
        rows, last = n, now
    time.sleep(0.02)
  total = time.perf_counter() - t0
  err = proc.stderr.read()
  if proc.returncode != 0 or first is None:
    raise RuntimeError(f"{' '.join(cmd)} (in {tree}) failed with exit {proc.returncode}:\n"
                       f"{err[-3000:]}")
  return {"to_first_step": first, "after_last_step": total - last, "total": total}


def bench_startup(baseline: str = "", repeats: int = 1, jobs=("default", "images")) -> dict:
  """The table's rows: per job (``JOBS`` keys), per code (baseline; this code
  with an empty and with a filled compilation cache), the seconds of
  ``time_run``."""
  scratch = tempfile.mkdtemp(prefix="vae_startup_")
  try:
    images = write_images(os.path.join(scratch, "images"))
    codes = ([("baseline " + os.path.basename(baseline.rstrip("/")), baseline, None)]
             if baseline else [])
    cache = os.path.join(scratch, "xla_cache")
    codes += [("this code, empty cache", REPO, cache), ("this code, cache filled", REPO, cache)]
    out = {}
    runs = 0
    for key in jobs:
      job, args = JOBS[key]
      if "vae_images" in args:
        args = args + [f"--config.data_dir={images}"]
      rows = out.setdefault(job, {})
      for r in range(repeats):
        for label, tree, cache_dir in codes:
          if label.endswith("empty cache"):
            shutil.rmtree(cache_dir, ignore_errors=True)
          env = {"VAE_COMPILATION_CACHE": cache_dir} if cache_dir else {}
          runs += 1
          wd = os.path.join(scratch, f"run{runs}")
          rows.setdefault(label, []).append(time_run(tree, args, wd, scratch, env))
          print(json.dumps({"job": job, "code": label, **rows[label][-1]}), flush=True)
    return out
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
