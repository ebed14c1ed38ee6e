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

import dataclasses
import inspect
import time
from typing import Any, Callable, Sequence

import jax
from tqdm import tqdm

from vae import evaluate
from vae import interrupt
from vae import networks
from vae.metrics import beta_vae, dci, factor_vae, mig, modularity, sap
from vae.metrics import utils as metric_utils
from vae.metrics.beta_vae import beta_vae_from_features, compute_beta_vae
from vae.metrics.dci import compute_dci, dci_from_codes
from vae.metrics.factor_vae import compute_factor_vae
from vae.metrics.mig import compute_mig, latent_factors, mig_from_codes, mig_scores
from vae.metrics.modularity import compute_modularity_explicitness, modularity_from_codes
from vae.metrics.sap import compute_sap, sap_from_codes

# Each metric module declares its ``METRIC`` record (``utils.Metric``). The
# order is part of the results: metric i draws its samples with
# ``fold_in(key, i)`` (``metric_key``), so a new metric is appended.
RECORDS: dict[str, metric_utils.Metric] = {
    m.METRIC.name: m.METRIC for m in (beta_vae, factor_vae, mig, dci, sap, modularity)}
METRICS: dict[str, Callable[..., dict]] = {n: r.compute for n, r in RECORDS.items()}
# The headline number of each metric's dict.
SCORE_KEYS = {n: r.score_key for n, r in RECORDS.items()}


def forward_model(model, conv_impl: str = "auto"):
  """``model`` with the encoder's convolutions computed by ``conv_impl``:
  "gemm" (``vae.conv``, the training path on a CPU), "xla" (XLA's own conv:
  cuDNN on a GPU, the TPU's) or "auto" (the default; as training: GEMM on a
  CPU, XLA's elsewhere), resolved on the backend of this process, whatever
  the model was trained with. Encoding without a backward pass, the GEMM
  form is 1.5-1.75x XLA:CPU's conv at every batch from 64 to 2,048 on a
  2-core AMD EPYC (the scoring benchmark, ``experiments.benchmark
  --scoring``, measures both). The parameters and the function are the same
  (codes agree to 2e-6); other architectures come back unchanged."""
  if not hasattr(model.encoder, "conv_impl"):
    return model
  conv_impl = networks.resolve_conv_impl(conv_impl)
  if model.encoder.conv_impl == conv_impl:
    return model
  return dataclasses.replace(model, encoder=model.encoder.clone(conv_impl=conv_impl))


def representation_from_params(params, model, conv_impl: str = "auto"
                               ) -> Callable[[jax.Array], jax.Array]:
  """The posterior mean E_q[z|x] of a trained model as a representation
  function (the code disentanglement_lib scores), for batches [B, ...]; for
  a posterior family other than the Gaussian, the code its decoder reads
  (``vae.evaluate.representation_fn``).

  A ``jax.tree_util.Partial`` binding ``params``: the metrics compile once per
  model shape, and scoring other parameters of the same model reuses that.
  ``conv_impl``: the encoder's forward path (``forward_model``)."""
  means = evaluate.representation_fn(forward_model(model, conv_impl))
  return jax.tree_util.Partial(means, params)


def check_names(names: Sequence[str], what: str = "metrics", also: Sequence[str] = ()) -> None:
  """Raises ValueError naming ``what`` (e.g. "eval.metrics") when a name in
  ``names`` is not a metric of ``METRICS`` (``also``: other words the caller
  accepts, named in the message)."""
  unknown = [n for n in names if n not in METRICS]
  if unknown:
    other = f" (or {', '.join(repr(a) for a in also)})" if also else ""
    raise ValueError(f"{what} must be among {sorted(METRICS)}{other}, got {unknown}")


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
  check_names(names)
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
    dci_importance: "gbt" (reference protocol), "gbt_jax", "hist_gbt" or "linear"
      (``vae.metrics.dci``).
    progress: a bar within each metric: images rendered and encoded, their
      rate and the time left.

  Returns:
    {metric: {scores..., "seconds", "images_encoded", "encode_seconds",
    "protocol" (sample sizes and settings)}}.
  """
  rep = representation_from_params(params, model)
  names = list(METRICS) if not names else list(names)
  out = {}
  for i, name in enumerate(names):
    opts = scale_protocol(name, scale)
    if name == "dci":
      opts["importance"] = dci_importance
    settings = protocol(name, opts)
    total = images_encoded(name, settings)
    bar = (tqdm(total=total, unit="img", unit_scale=True, dynamic_ncols=True, mininterval=2.0,
                desc=f"scoring {name} ({i + 1}/{len(names)})") if progress else None)
    count = [0, None]            # images encoded; when the last one was

    def seen(num, bar=bar, count=count):
      count[0] += num
      count[1] = time.perf_counter()
      if bar is not None:
        bar.update(num)

    t0 = time.perf_counter()
    with metric_utils.on_encoded(seen):
      # Each metric's key depends on the metric alone, not on which others
      # are scored with it: the periodic scores equal the final ones.
      out[name] = compute_all(ground_truth, rep, metric_key(key, name), [name],
                              **{name: opts})[name]
    out[name]["seconds"] = time.perf_counter() - t0
    out[name]["images_encoded"] = count[0]
    # Until the last image was encoded: sampling, rendering and encoding
    # (compilation included); the rest of ``seconds`` is the classifier.
    out[name]["encode_seconds"] = (count[1] - t0) if count[1] is not None else 0.0
    out[name]["protocol"] = settings
    if bar is not None:
      bar.close()
    interrupt.check()        # between metrics: a SIGTERM the handler could not raise
  return out


def metric_key(key, name: str):
  """The key ``score_disentanglement`` gives metric ``name``: ``key`` folded
  with the metric's place in ``METRICS``."""
  return jax.random.fold_in(key, list(METRICS).index(name))


def headlines(scores: dict[str, dict]) -> dict[str, float | None]:
  """{metric: its headline number} of a ``score_disentanglement`` result (or
  a results file's "scores"): the entry ``SCORE_KEYS`` names (MIG's "mig",
  the BetaVAE score's "eval_accuracy", ...); None where that entry is
  missing. Names that are not metrics are left out."""
  return {name: (score.get(SCORE_KEYS[name]) if isinstance(score, dict) else None)
          for name, score in scores.items() if name in SCORE_KEYS}


def images_encoded(name: str, settings: dict[str, Any]) -> int:
  """Observations a metric renders and encodes under ``settings`` (its
  ``protocol``): what scoring costs, before any classifier."""
  check_names([name])
  return RECORDS[name].images_encoded(settings)


__all__ = ["METRICS", "RECORDS", "SCORE_KEYS", "check_names", "compute_all", "protocol", "metric_key", "headlines", "images_encoded", "scale_protocol", "score_disentanglement", "representation_from_params",
           "forward_model",
           "compute_beta_vae", "beta_vae_from_features", "compute_factor_vae",
           "compute_mig", "latent_factors", "mig_from_codes", "mig_scores", "compute_dci", "dci_from_codes",
           "compute_sap", "sap_from_codes", "compute_modularity_explicitness",
           "modularity_from_codes"]
