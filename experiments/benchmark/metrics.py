"""Disentanglement metrics: against their reference, and scoring a model.

Metrics (``bench_metrics``): each of ``vae.metrics.METRICS`` at its published
sample sizes (times ``scale``), ours (the first call, compiling, then a
second with another key) against its numpy/scikit-learn reference
(``vae.metrics.reference``, found by the metric's name), on the same cheap
representation and data set.

Scoring (``bench_scoring``): encodes per second of the conv encoder's
forward pass in each of its forms, against the limit its FLOPs set at the
f32 GEMM rate measured in the same process; procedural dSprites rendering;
and each metric at the published sample sizes on a trained model, with its
images and seconds.

DCI agreement (``bench_dci_agreement``): DCI with each importance on the
same codes of trained models, with their times.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vae import metrics as metrics_lib
from vae import model as model_lib
from vae.data import dsprites
from vae.data.synthetic import FactorVectors
from vae.metrics import dci
from vae.metrics import reference as ref
from vae.metrics import utils as metric_utils

from .. import job as job_lib
from .timing import time_it

# Settings of a metric in the comparison, for both sides: DCI with the
# linear probe (the reference's gradient-boosted trees take minutes).
COMPARED_OPTIONS = {"dci": {"importance": "linear"}}

# Multiply-adds of the conv encoder's layers for one 64x64x1 image: four
# 4x4 stride-2 convs (output H*W*C_out, 16*C_in taps), FC 1024->256, head 256->20.
ENCODER_FLOPS = 2 * (32 * 32 * 32 * 16 * 1 + 16 * 16 * 32 * 16 * 32 + 8 * 8 * 64 * 16 * 32
                     + 4 * 4 * 64 * 16 * 64 + 1024 * 256 + 256 * 20)


def resolve_metrics(requested: Sequence[str]) -> list[str]:
  """Metric names: every one of ``vae.metrics.METRICS`` for ``["all"]`` (or
  nothing), else ``requested``."""
  return list(metrics_lib.METRICS) if list(requested) in ([], ["all"]) else list(requested)


def metric_representation() -> Callable:
  """A cheap, fixed, jit-able code of the factor-vector observations: a random
  non-linear mixing plus a pseudo-random component, 10 latents, so scores are
  between 0 and 1 and the time goes to the metric, not the encoder."""
  rng = np.random.default_rng(0)
  a = jnp.asarray(rng.normal(size=(5, 10)), jnp.float32)
  b = jnp.asarray(rng.normal(size=(5, 10)) * 1000.0, jnp.float32)

  def rep(x):
    h = jnp.sin(x @ b) * 43758.5453
    return jnp.tanh(x @ a) + 0.2 * (h - jnp.floor(h))
  return jax.jit(rep)


def _accepted(fn: Callable, settings: dict[str, Any]) -> dict[str, Any]:
  params = inspect.signature(fn).parameters
  return {k: v for k, v in settings.items() if k in params}


def run_reference(name: str, ground_truth, representation_fn, rng: np.random.Generator,
                  settings: dict[str, Any]) -> dict:
  """The reference of metric ``name`` under ``settings`` (its ``protocol``):
  ``reference.<name>`` where the reference has the whole protocol, else
  ``reference.<name>_from_codes`` on train and test codes drawn as the
  reference draws them; each given the settings its signature takes."""
  whole = getattr(ref, name, None)
  if whole is not None:
    return whole(ground_truth, representation_fn, rng, **_accepted(whole, settings))
  from_codes = getattr(ref, f"{name}_from_codes")
  train = ref.generate_codes(ground_truth, representation_fn, settings["num_train"], rng,
                             settings["batch_size"])
  test = ref.generate_codes(ground_truth, representation_fn, settings["num_test"], rng,
                            settings["batch_size"])
  return from_codes(*train, *test, **_accepted(from_codes, settings))


def _compare(name: str, gt, rep, scale: float) -> dict:
  """One metric's row: ours (first call, then steady) against its reference."""
  opts = {**metrics_lib.scale_protocol(name, scale), **COMPARED_OPTIONS.get(name, {})}
  ours = lambda seed: metrics_lib.METRICS[name](gt, rep, jax.random.key(seed), **opts)
  first = time_it(lambda: ours(0), warmup=0)
  steady = time_it(lambda: ours(1), warmup=0)
  rng = np.random.default_rng(0)
  theirs = time_it(lambda: run_reference(name, gt, rep, rng, metrics_lib.protocol(name, opts)),
                   warmup=0)
  key = metrics_lib.SCORE_KEYS[name]
  label = name + "".join(f" ({v})" for v in COMPARED_OPTIONS.get(name, {}).values())
  return {"metric": label, "ours_first_seconds": first.best, "ours_seconds": steady.best,
          "reference_seconds": theirs.best, "speedup": theirs.best / steady.best,
          "speedup_first_call": theirs.best / first.best,
          "ours_score": steady.value[key], "reference_score": theirs.value[key]}


def bench_metrics(names: Sequence[str], *, scale: float = 1.0) -> list[dict]:
  """One row per metric, on 5-factor vectors with dSprites' factor sizes."""
  gt = FactorVectors()
  rep = metric_representation()
  return [_compare(name, gt, rep, scale) for name in names]


def _scoring_model(workdir: str):
  """(model, params): the workdir's last checkpoint, or an untrained conv VAE."""
  if workdir:
    return job_lib.restore_params(workdir)
  m = model_lib.make_model(architecture="conv", data_shape=(64, 64, 1), latent_dim=10,
                           likelihood="bernoulli")
  return m, model_lib.init_params(jax.random.key(0), m)


def _encoder_paths(m) -> dict[str, Callable]:
  """The encoder's forward forms on 512-image batches; scoring takes
  ``forward_model``'s "auto" (GEMM on a CPU)."""
  gemm_model = metrics_lib.forward_model(m, "gemm")
  return {
      "GEMM conv, one example at a time (vmap)": jax.jit(
          lambda p, x: jax.lax.map(lambda b: jax.vmap(
              lambda xi: model_lib.encode(p, xi, model=gemm_model)[0])(b), x)),
      "XLA conv, batch 512 (scoring on a GPU or TPU)": jax.jit(lambda p, x: jax.lax.map(
          metrics_lib.representation_from_params(p, m, "xla"), x)),
      "GEMM conv, batch 512 (scoring on a CPU)": jax.jit(lambda p, x: jax.lax.map(
          metrics_lib.representation_from_params(p, m), x)),
  }


def bench_scoring(*, workdir: str = "", names: Sequence[str] = (), scale: float = 1.0) -> dict:
  """What scoring a conv model costs, against what the CPU allows."""
  out = {}
  a = jax.random.normal(jax.random.key(0), (1024, 1024), jnp.float32)
  gemm = jax.jit(lambda a: a @ a)
  out["gemm_gflops"] = [r / 1e9 for r in time_it(lambda: gemm(a), repeats=5)
                        .rate_range(2 * 1024 ** 3)]
  out["encoder_mflops_per_image"] = ENCODER_FLOPS / 1e6
  out["limit_images_per_sec"] = out["gemm_gflops"][1] * 1e9 / ENCODER_FLOPS
  m, params = _scoring_model(workdir)
  x = (jax.random.uniform(jax.random.key(1), (8, 512, 64, 64, 1)) > 0.5).astype(jnp.float32)
  n = x.shape[0] * x.shape[1]
  out["encoder"] = []
  for name, fn in _encoder_paths(m).items():
    t = time_it(lambda: fn(params, x), repeats=3)
    out["encoder"].append({"path": name, "images_per_sec": t.rate_range(n),
                           "of_limit": t.rate(n) / out["limit_images_per_sec"]})
  gt = dsprites.DSprites()
  factors = gt.sample_factors(jax.random.key(2), n)
  render = jax.jit(lambda f: jax.lax.map(gt.observations, f.reshape(8, 512, -1)))
  out["render_images_per_sec"] = time_it(lambda: render(factors), repeats=3).rate_range(n)
  res = metrics_lib.score_disentanglement(params, gt, jax.random.key(3), model=m,
                                          names=resolve_metrics(names), scale=scale,
                                          progress=True)
  head = metrics_lib.headlines(res)
  out["metrics"] = [{"metric": k, "score": head[k],
                     "seconds": v["seconds"], "images": v["images_encoded"],
                     "encode_seconds": v["encode_seconds"]} for k, v in res.items()]
  return out


def bench_dci_agreement(workdirs: Sequence[str], *, scale: float = 1.0,
                        progress: Callable[[dict], None] | None = None) -> list[dict]:
  """DCI of trained conv dSprites models (``workdirs``) with every importance,
  on the same codes of each; ``progress`` is given each row as it comes."""
  if not workdirs:
    raise ValueError("DCI agreement needs trained conv dSprites workdirs")
  gt = dsprites.DSprites()
  opts = metrics_lib.protocol("dci", metrics_lib.scale_protocol("dci", scale))
  rows = []
  for workdir in workdirs:
    m, params = job_lib.restore_params(workdir)
    codes = metric_utils.sample_train_test_codes(
        gt, metrics_lib.representation_from_params(params, m), jax.random.key(0),
        opts["num_train"], opts["num_test"], opts["batch_size"])
    for imp in dci.IMPORTANCES:
      t = time_it(lambda: dci.dci_from_codes(*codes, factor_sizes=gt.factor_sizes,
                                             importance=imp), warmup=0)
      rows.append({"model": workdir, "importance": imp, "seconds": t.best,
                   **{k: t.value[k] for k in ("disentanglement", "completeness",
                                              "informativeness_test")}})
      if progress:
        progress(rows[-1])
  return rows
