"""Evaluate a workdir's latest checkpoint: ELBO, IWAE log-likelihood, active
units and, on data with known factors, the disentanglement metrics.

  python -m experiments.evaluate --workdir workdirs/vae_bmnist --num_samples 5000 \
      --split validation --data_dir ../shared/data/binarized_mnist

  # a dSprites run: likelihood on held-out renders plus every metric at the
  # published sample sizes (--metric_scale 0.1 for a quick look)
  python -m experiments.evaluate --workdir workdirs/default --metrics all

Reads the run's config.json and checks it and the flags before anything is
restored; restores the newest readable checkpoint and writes
``eval_<split>_k<k>.json`` (and ``eval_metrics.json``) beside it, holding the
workdir's lock meanwhile. Exit codes as ``experiments.train`` (README).
"""

import json
import os
import sys

from absl import flags, logging

from . import cli
from . import job as job_lib
from . import record
from . import rerun
from vae import allocator
from vae import compile_cache
from vae import data as data_lib
from vae import metrics as metrics_lib
from vae.metrics import dci as dci_lib
from vae import workdir as workdir_lib

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's folder.")
_SPLIT = flags.DEFINE_string("split", "validation", "Data split to evaluate.")
_K = flags.DEFINE_integer("num_samples", 5000, "Importance samples k.")
_MAX = flags.DEFINE_integer("max_examples", 0, "Evaluate the first N examples only (0: all).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Override the config's data_dir.")
_METRICS = flags.DEFINE_list("metrics", ["auto"], "Disentanglement metrics: 'all', 'none', "
                             "names (beta_vae,factor_vae,mig,dci,sap,modularity), or 'auto' "
                             "(all on ground-truth data sets, none otherwise).")
_SCALE = flags.DEFINE_float("metric_scale", 1.0, "Multiplies the metrics' published sample sizes.")
_DCI = flags.DEFINE_enum("dci_importance", "gbt", list(dci_lib.IMPORTANCES),
                         "DCI importances: gradient-boosted trees (reference) or linear probe.")
flags.mark_flag_as_required("workdir")

def evaluation_config(workdir: str, *, split: str, num_samples: int, max_examples: int,
                      data_dir: str | None, metrics: list[str]):
  """The run's config with the evaluation's settings, and the metric names,
  checked before anything is loaded or restored.

  Raises:
    FileNotFoundError, ValueError: a missing or incomplete config.json, a
      split the data set does not have, k < 1, unknown metric names or metrics
      on data without known factors.
  """
  config = job_lib.load_run_config(workdir)
  if data_dir is not None:
    config.data_dir = os.path.abspath(data_dir)
  splits = data_lib.splits(config.dataset)
  if splits is not None and split not in splits:
    raise ValueError(f"--split must be one of {list(splits)} for {config.dataset!r}, "
                     f"got {split!r}")
  config.eval.num_importance_samples = num_samples
  config.eval.split = split
  if max_examples:
    config.eval.max_examples = max_examples
  elif not data_lib.is_ground_truth(config.dataset):
    config.eval.max_examples = 0          # the whole split unless --max_examples
  config.eval.metrics = ()
  config.eval_every = 0                   # the training schedule is not used here
  job_lib.check_config(config)
  names = metrics
  conditional = bool(config.model.get("num_classes", 0))
  if names == ["auto"]:
    names = ["all"] if data_lib.is_ground_truth(config.dataset) and not conditional else ["none"]
  if names == ["none"]:
    return config, []
  if conditional:
    raise ValueError("disentanglement metrics encode renders without their labels, which this "
                     f"conditional model's encoder reads (label={config.get('label')!r}): use "
                     "--metrics none")
  names = list(metrics_lib.METRICS) if names == ["all"] else names
  metrics_lib.check_names(names, "--metrics", also=("all", "none", "auto"))
  if not data_lib.is_ground_truth(config.dataset):
    raise ValueError(f"disentanglement metrics need a data set with known factors; "
                     f"this run trained on {config.dataset!r} (use --metrics none)")
  return config, names


def evaluate_workdir(workdir: str, config, names: list[str], *, metric_scale: float = 1.0,
                     dci_importance: str = "gbt", job=None) -> dict:
  """Restores ``workdir``'s newest readable checkpoint, evaluates it and
  writes the result files (strict JSON; non-finite values null and listed).

  Raises:
    experiments.job.NonFiniteEvaluationError: the evaluation is not finite.
  """
  job = job or job_lib.resolve(config)
  split, k = job.eval_spec.split, job.eval_spec.num_importance_samples
  with workdir_lib.lock(workdir):
    state = job_lib.restore_state(workdir, job)
    out = os.path.join(workdir, f"eval_{split}_k{k}.json")
    mout = os.path.join(workdir, "eval_metrics.json")
    results, bad = record.evaluate_and_record(
        state.params, int(state.step), job, out, metrics=names, metric_scale=metric_scale,
        dci_importance=dci_importance, metrics_path=mout, progress=True)
    print(f"wrote {out}" + (f" and {mout}" if names else ""))
  if bad:
    raise record.NonFiniteEvaluationError(
        f"the evaluation of {workdir} at step {int(state.step)} is not finite "
        f"({', '.join(bad)}); the result files hold null there and list them under "
        "\"non_finite\"")
  return results


def summary_of(results: dict, names: list[str]) -> dict:
  summary = {"step": results["step"], "split": results["split"],
             "examples": results["num_examples"]}
  if "iwae" in results:
    summary.update({"elbo": results["elbo"]["elbo"], "nll_k": results["iwae"]["nll"],
                    "k": results["iwae"]["num_samples"], "seconds": results["iwae"]["seconds"],
                    "peak_rss_mib": results["iwae"]["peak_rss_mib"],
                    "active_units": results["active_units"]["active_units"]})
  else:
    summary["reconstruction_log_likelihood"] = results["reconstruction_log_likelihood"]
  if names:
    summary["disentanglement"] = {
        n: {k: v for k, v in results["disentanglement"][n].items() if not isinstance(v, list)}
        for n in names}
  return summary


def main(argv):
  allocator.tune()   # the malloc settings XLA:CPU needs (vae/allocator.py)
  compile_cache.enable()   # programs compiled once are read back (vae/compile_cache.py)
  del argv
  logging.set_verbosity(logging.WARNING)
  try:
    config, names = evaluation_config(
        _WORKDIR.value, split=_SPLIT.value, num_samples=_K.value, max_examples=_MAX.value,
        data_dir=_DATA_DIR.value, metrics=_METRICS.value)
    job = job_lib.resolve(config)        # the data opened: a split the files lack says so
    rerun.check_classes_unchanged(job, _WORKDIR.value)
  except (FileNotFoundError, ValueError, TypeError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)   # before any restore
    sys.exit(2)
  results = job_lib.exit_on_known_failure(
      evaluate_workdir, _WORKDIR.value, config, names, metric_scale=_SCALE.value,
      dci_importance=_DCI.value, job=job)
  print(json.dumps(summary_of(results, names), indent=2))


def run():
  """The ``vae-evaluate`` console script."""
  cli.run(main, doc=__doc__, module=__name__)


if __name__ == "__main__":
  run()
