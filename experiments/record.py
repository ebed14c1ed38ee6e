"""Evaluate, score and record: the one path by which a trained model's
final evaluation is computed and written, used by training
(``experiments.job``) and by ``experiments.evaluate``.

``evaluate_and_record`` evaluates the params on the job's evaluation data
(``vae.evaluate.evaluate_params``: ELBO, IWAE, active units, diagnostics;
the reconstruction for autoencoders), scores the disentanglement metrics
on the job's ground truth with the run's score key (the same samples as the
periodic scores), and writes strict JSON (non-finite values null and
listed). ``write_figures`` draws the run's figures.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax

from vae import evaluate as ev
from vae import metrics as metrics_lib
from vae import plots
from vae import workdir as workdir_lib

# The eval key's fold for disentanglement scores: the final scores and the
# periodic ones (eval.score_every) draw the same samples.
SCORE_KEY = 4


class NonFiniteEvaluationError(FloatingPointError):
  """The final evaluation gave NaN or inf; the result file holds nulls and
  the list of those fields (``non_finite``)."""


def score_key(job) -> jax.Array:
  return jax.random.fold_in(job.keys["eval"], SCORE_KEY)


def evaluate_and_record(params, step: int, job, path: str, *, extra: dict | None = None,
                        metrics: Sequence[str] | None = None, metric_scale: float | None = None,
                        dci_importance: str | None = None, metrics_path: str | None = None,
                        progress: bool = True) -> tuple[dict[str, Any], list[str]]:
  """Evaluates ``params`` (at ``step``) on ``job``'s data, scores its
  metrics and writes the result to ``path``.

  Args:
    extra: more fields for the result (training time), before the scores.
    metrics, metric_scale, dci_importance: the disentanglement metrics and
      their settings (default: the job's ``eval_spec``).
    metrics_path: write the scores to this file (with their settings)
      instead of into ``path``, after ``path`` is written.

  Returns:
    (the result with its scores under "disentanglement", the names of the
    non-finite values written as null).
  """
  spec = job.eval_spec
  names = list(spec.metrics if metrics is None else metrics)
  scale = spec.metric_scale if metric_scale is None else metric_scale
  importance = spec.dci_importance if dci_importance is None else dci_importance
  results = ev.evaluate_params(params, job.eval_set, job.keys["eval"], model=job.model,
                               probabilistic=job.objective.record.probabilistic, spec=spec,
                               dataset_size=job.num_train, progress=progress)
  results.update({"split": spec.split, "step": int(step)})
  results.update(extra or {})
  bad = workdir_lib.write_json(path, results, indent=2) if metrics_path else []
  if names:
    scores = metrics_lib.score_disentanglement(
        params, job.ground_truth_data, score_key(job), model=job.model, names=names,
        scale=scale, dci_importance=importance, progress=progress)
    if metrics_path:
      scores.update({"step": int(step), "metric_scale": scale, "dci_importance": importance})
      bad += workdir_lib.write_json(metrics_path, scores, indent=2)
    results["disentanglement"] = scores
  if not metrics_path:
    bad += workdir_lib.write_json(path, results, indent=2)
  return results, bad


def write_figures(workdir: str, params, job, results: dict[str, Any]) -> list[str]:
  """Writes the run's PNG figures (and the traversal GIF); returns the PNG
  paths (``vae.plots.save_run_figures``: one compiled encode and decode)."""
  probabilistic = job.objective.record.probabilistic
  kl_per_dim = results["elbo"]["kl_per_dim"] if probabilistic else None
  return plots.save_run_figures(
      workdir, params, job.eval_set, jax.random.fold_in(job.keys["eval"], 2),
      model=job.model, probabilistic=probabilistic,
      class_names=None if job.labels is None else job.labels.class_names,
      kl_per_dim=kl_per_dim, latent_notes=latent_notes(job, results, kl_per_dim))


def latent_notes(job, results: dict[str, Any], kl_per_dim) -> list[str] | None:
  """With a final MIG on data with known factors, each latent's note for the
  traversal rows: the factor it informs most and its normalised mutual
  information, "posX (0.62)" (``vae.metrics.latent_factors``); else None.
  None too where MIG scored a code other than the traversed latents, or
  where the data do not name their factors."""
  mig = results.get("disentanglement", {}).get("mig")
  if (mig is None or kl_per_dim is None or job.ground_truth_data is None
      or len(mig["mutual_info"]) != len(kl_per_dim)
      or len(job.ground_truth_data.factor_names) != len(mig["factor_entropy"])):
    return None      # (a data set that does not name its factors: no notes)
  return factor_notes(mig, job.ground_truth_data.factor_names)


def factor_notes(mig: dict[str, Any], factor_names) -> list[str]:
  """"posX (0.62)" per latent, from a MIG result (``latent_factors``)."""
  return [f"{name} ({nmi:.2f})" for name, nmi in
          metrics_lib.latent_factors(mig, factor_names)]
