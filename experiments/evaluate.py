"""Evaluate a workdir's latest checkpoint: ELBO, IWAE log-likelihood, active
units and, on data with known factors, the disentanglement metrics.

  python -m experiments.evaluate --workdir workdirs/vae_bmnist --num_samples 5000 \
      --split validation --data_dir ../shared/data/binarized_mnist

  # a dSprites run: likelihood on held-out renders plus every metric at the
  # published sample sizes (--metric_scale 0.1 for a quick look)
  python -m experiments.evaluate --workdir workdirs/default --metrics all

Reads the run's config.json, restores its newest checkpoint and writes
``eval_<split>_k<k>.json`` (and ``eval_metrics.json``) beside it.
"""

import json
import os

import jax
import ml_collections
from absl import app, flags, logging

from experiments import job as job_lib
from vae import data as data_lib
from vae import evaluate as ev
from vae import metrics as metrics_lib

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's folder.")
_SPLIT = flags.DEFINE_string("split", "validation", "Data split to evaluate.")
_K = flags.DEFINE_integer("num_samples", 5000, "Importance samples k.")
_MAX = flags.DEFINE_integer("max_examples", 0, "Evaluate the first N examples only (0: all).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Override the config's data_dir.")
_METRICS = flags.DEFINE_list("metrics", ["auto"], "Disentanglement metrics: 'all', 'none', "
                             "names (beta_vae,factor_vae,mig,dci,sap,modularity), or 'auto' "
                             "(all on ground-truth data sets, none otherwise).")
_SCALE = flags.DEFINE_float("metric_scale", 1.0, "Multiplies the metrics' published sample sizes.")
_DCI = flags.DEFINE_enum("dci_importance", "gbt", ["gbt", "linear"],
                         "DCI importances: gradient-boosted trees (reference) or linear probe.")
flags.mark_flag_as_required("workdir")


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir} a training run's workdir?")
  with open(path) as f:
    record = json.load(f)
  record.pop("effective", None)             # what was trained; not a config field
  return job_lib.upgrade_config(ml_collections.ConfigDict(record))


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  config = load_run_config(_WORKDIR.value)
  if _DATA_DIR.value is not None:
    config.data_dir = _DATA_DIR.value
  config.eval.num_importance_samples = _K.value
  config.eval.split = _SPLIT.value
  if _MAX.value:
    config.eval.max_examples = _MAX.value
  elif not data_lib.is_ground_truth(config.dataset):
    config.eval.max_examples = 0          # the whole split unless --max_examples
  job = job_lib.resolve(config)
  state = job_lib.restore_state(_WORKDIR.value, job)
  keys, model = job.keys, job.model
  results = ev.evaluate_params(state.params, job.eval_data, keys["eval"], model=model,
                               probabilistic=job.objective.record.probabilistic,
                               spec=job.eval_spec)
  results.update({"split": _SPLIT.value, "step": int(state.step)})
  out = os.path.join(_WORKDIR.value, f"eval_{_SPLIT.value}_k{_K.value}.json")
  with open(out, "w") as f:
    json.dump(results, f, indent=2)
  summary = {"step": results["step"], "split": _SPLIT.value, "examples": results["num_examples"]}
  if "iwae" in results:
    summary.update({"elbo": results["elbo"]["elbo"], "nll_k": results["iwae"]["nll"],
                    "k": _K.value, "seconds": results["iwae"]["seconds"],
                    "peak_rss_mib": results["iwae"]["peak_rss_mib"],
                    "active_units": results["active_units"]["active_units"]})
  else:
    summary["reconstruction_log_likelihood"] = results["reconstruction_log_likelihood"]
  names = _METRICS.value
  if names == ["auto"]:
    names = ["all"] if job.ground_truth else ["none"]
  if names != ["none"]:
    if not job.ground_truth:
      raise app.UsageError(f"disentanglement metrics need a data set with known factors; "
                           f"this run trained on {config.dataset!r}")
    names = list(metrics_lib.METRICS) if names == ["all"] else names
    scores = metrics_lib.score_disentanglement(
        state.params, job.train_data, jax.random.fold_in(keys["eval"], 4), model=model,
        names=names,
        scale=_SCALE.value, dci_importance=_DCI.value)
    scores.update({"step": int(state.step), "metric_scale": _SCALE.value,
                   "dci_importance": _DCI.value})
    mout = os.path.join(_WORKDIR.value, "eval_metrics.json")
    with open(mout, "w") as f:
      json.dump(scores, f, indent=2)
    summary["disentanglement"] = {
        n: {k: v for k, v in scores[n].items() if not isinstance(v, list)} for n in names}
    print(f"wrote {mout}")
  print(json.dumps(summary, indent=2))
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main)
