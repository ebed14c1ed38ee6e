"""Disentanglement metrics in JAX, on data with known generative factors.

Every metric takes ``(ground_truth, representation_fn, key, **protocol)``:
a ``vae.data.ground_truth.GroundTruthData``, a jit-able function from a batch
of observations to codes [B, D], and a PRNG key; sample sizes, batch sizes
and classifier settings are keyword arguments whose defaults are the
published protocols (as disentanglement_lib, Locatello et al. 2019). Each
returns a dict of named scores. Sampling, rendering and encoding run batched
under jit on the device; histograms, mutual information and the linear
classifiers too (only DCI's gradient-boosted trees use scikit-learn).

  from vae import metrics
  rep = metrics.representation_from_params(params, model)
  scores = metrics.compute_all(data, rep, jax.random.key(0))
"""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any, Callable, Sequence

import jax
from tqdm import tqdm

from vae import model as model_lib
from vae.metrics.beta_vae import beta_vae_from_features, compute_beta_vae
from vae.metrics.dci import compute_dci, dci_from_codes
from vae.metrics.factor_vae import compute_factor_vae
from vae.metrics.mig import compute_mig, mig_from_codes, mig_scores
from vae.metrics.modularity import compute_modularity_explicitness, modularity_from_codes
from vae.metrics.sap import compute_sap, sap_from_codes

METRICS: dict[str, Callable[..., dict]] = {
    "beta_vae": compute_beta_vae,
    "factor_vae": compute_factor_vae,
    "mig": compute_mig,
    "dci": compute_dci,
    "sap": compute_sap,
    "modularity": compute_modularity_explicitness,
}

# The headline number of each metric's dict.
SCORE_KEYS = {"beta_vae": "eval_accuracy", "factor_vae": "eval_accuracy", "mig": "mig",
              "dci": "disentanglement", "sap": "sap", "modularity": "modularity"}


@functools.lru_cache(maxsize=None)
def _posterior_means(model):
  def means(params, x):
    return jax.vmap(lambda xi: model_lib.encode(params, xi.astype("float32"), model=model)[0])(x)
  return means


def representation_from_params(params, model) -> Callable[[jax.Array], jax.Array]:
  """The posterior mean E_q[z|x] of a trained model as a representation
  function (the code disentanglement_lib scores), for batches [B, ...].

  A ``jax.tree_util.Partial`` binding ``params``: the metrics compile once per
  model shape, and scoring other parameters of the same model reuses that."""
  return jax.tree_util.Partial(_posterior_means(model), params)


def compute_all(ground_truth, representation_fn, key, names: Sequence[str] | None = None,
                **options: dict[str, Any]) -> dict[str, dict]:
  """Every metric (or those in ``names``), each with its own key.

  Args:
    ground_truth, representation_fn, key: as each metric.
    names: metric names (keys of ``METRICS``); None: all.
    **options: per-metric keyword overrides, e.g. ``dci={"importance": "linear"}``.

  Returns:
    {metric name: its dict of scores}.
  """
  names = list(METRICS) if names is None else list(names)
  unknown = [n for n in names if n not in METRICS]
  if unknown:
    raise ValueError(f"unknown metrics {unknown}; choose from {sorted(METRICS)}")
  out = {}
  for i, name in enumerate(names):
    out[name] = METRICS[name](ground_truth, representation_fn, jax.random.fold_in(key, i),
                              **options.get(name, {}))
  return out


# Protocol settings named num_* that are not sample sizes (MIG's histogram).
NOT_SAMPLE_SIZES = ("num_bins",)


def scale_protocol(name: str, scale: float) -> dict[str, int]:
  """Keyword overrides that multiply a metric's published sample sizes by
  ``scale`` (1: the published protocol); other settings (MIG's 20 bins) keep
  their published values."""
  if scale == 1.0:
    return {}
  sig = inspect.signature(METRICS[name]).parameters
  return {k: max(int(round(p.default * scale)), 16) for k, p in sig.items()
          if k.startswith("num_") and k not in NOT_SAMPLE_SIZES}


def protocol(name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
  """The settings a metric runs with: its published defaults (sample sizes,
  bins, classifier settings) with ``overrides`` applied; recorded beside
  each score so that a number always comes with its sample sizes."""
  sig = inspect.signature(METRICS[name]).parameters
  out = {k: p.default for k, p in sig.items() if p.default is not inspect.Parameter.empty}
  out.update(overrides or {})
  return out


def score_disentanglement(params, ground_truth, key, *, model, names=None,
                          scale: float = 1.0, dci_importance: str = "gbt",
                          progress: bool = False) -> dict[str, Any]:
  """Every disentanglement metric of the posterior means of ``params`` on a
  ground-truth data set, each timed.

  Args:
    params: model parameters.
    ground_truth: a ``GroundTruthData``.
    key: PRNG key.
    model: the static ``Model``.
    names: metric names (default: all six).
    scale: multiplies every published sample size (for quick looks).
    dci_importance: "gbt" (reference protocol) or "linear".
    progress: a bar over the metrics (the one running, elapsed, time left).

  Returns:
    {metric: {scores..., "seconds", "protocol" (sample sizes and settings)}}.
  """
  rep = representation_from_params(params, model)
  names = list(METRICS) if not names else list(names)
  out = {}
  bar = (tqdm(total=len(names), unit="metric", dynamic_ncols=True, desc="scoring")
         if progress else None)
  for i, name in enumerate(names):
    if bar is not None:
      bar.set_description(f"scoring {name}")
    opts = scale_protocol(name, scale)
    if name == "dci":
      opts["importance"] = dci_importance
    t0 = time.perf_counter()
    out[name] = compute_all(ground_truth, rep, jax.random.fold_in(key, i), [name],
                            **{name: opts})[name]
    out[name]["seconds"] = time.perf_counter() - t0
    out[name]["protocol"] = protocol(name, opts)
    if bar is not None:
      bar.update(1)
  if bar is not None:
    bar.close()
  return out


__all__ = ["METRICS", "SCORE_KEYS", "compute_all", "protocol", "scale_protocol", "score_disentanglement", "representation_from_params",
           "compute_beta_vae", "beta_vae_from_features", "compute_factor_vae",
           "compute_mig", "mig_from_codes", "mig_scores", "compute_dci", "dci_from_codes",
           "compute_sap", "sap_from_codes", "compute_modularity_explicitness",
           "modularity_from_codes"]
