"""The disentangling family: steps/s of each method's training step.

Each method of the objective registry (``vae.objectives.REGISTRY``) that
has a dSprites config (``experiments/configs/<method>_dsprites.py``) is
built from that config by ``experiments/job.py`` (the study's conv model,
batch 64, 64x64x1 procedural dSprites) and run in the loop training uses
(its ``train_loop``), beside the beta-VAE step as the baseline of the same
run.
"""

from __future__ import annotations

import importlib
from typing import Sequence

import jax
import numpy as np

from vae import objectives
from vae import parallel
from vae import train as train_lib
from vae.data import sources
from vae.data.dsprites import DSprites

from .. import configs
from .. import job as job_lib
from .timing import Carried, time_it

BASELINE = "beta_vae"


def disentangling_methods() -> tuple[str, ...]:
  """The registry's objectives that have a dSprites config, the baseline
  first, then in the registry's order."""
  available = configs.available()
  names = [name for name in objectives.REGISTRY if f"{name}_dsprites" in available]
  return tuple(sorted(names, key=lambda name: name != BASELINE))


def resolve_methods(requested: Sequence[str]) -> tuple[str, ...]:
  """``["all"]``: every disentangling method; else the names, checked.

  Raises:
    ValueError: a name that is not an objective, or has no dSprites config.
  """
  if list(requested) == ["all"]:
    return disentangling_methods()
  for name in requested:
    objectives.get(name)                        # an unknown name lists the registry
    if name not in disentangling_methods():
      raise ValueError(f"objective {name!r} has no dSprites config; the disentangling "
                       f"methods are {list(disentangling_methods())}")
  return tuple(requested)


def _method_config(name: str, compute_dtype: str):
  cfg = importlib.import_module(f"{configs.__name__}.{name}_dsprites").get_config()
  cfg.model.compute_dtype = compute_dtype
  return cfg


def _time_method(name: str, ds: DSprites, steps: int, compute_dtype: str) -> dict:
  """One method's row: its config's step in its config's loop, ``steps``
  steps after as many warm-up (compiling) steps."""
  cfg = _method_config(name, compute_dtype)
  job = job_lib.resolve(cfg, train_data=ds)
  model, loss_fn, opt, loop_kind = job.model, job.objective, job.optimizer, job.schedule.loop
  step = train_lib.make_train_step(loss_fn, model, opt)
  src = sources.GroundTruthSource(ds, cfg.batch_size, jax.random.key(1))
  mesh = parallel.make_mesh()
  run = (train_lib.make_scan_loop if loop_kind == "scan" else train_lib.make_step_loop)(
      step, src, mesh)
  arrays = parallel.replicate(src.arrays(), mesh)
  key = parallel.replicate(jax.random.key(2), mesh)
  loop = Carried(lambda state, _: run(state, arrays, key, steps), parallel.replicate(
      train_lib.init_state(jax.random.key(0), model, opt, loss_fn), mesh))
  dt = time_it(loop.run(1), warmup=1).best
  return {"method": name, "loop": loop_kind, "batch": cfg.batch_size, "steps": steps,
          "steps_per_sec": steps / dt, "examples_per_sec": steps * cfg.batch_size / dt,
          "final_loss": float(np.asarray(loop.metrics["loss"])[-1])}


def bench_methods(names: Sequence[str], *, steps: int = 20,
                  compute_dtype: str = "float32") -> list[dict]:
  """One row per method (names of ``resolve_methods``)."""
  ds = DSprites()
  return [_time_method(name, ds, steps, compute_dtype) for name in names]
