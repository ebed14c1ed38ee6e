"""Evaluate a workdir's latest checkpoint: ELBO, IWAE log-likelihood, active units.

  python -m experiments.evaluate --workdir workdirs/vae_bmnist --num_samples 5000 \
      --split validation --data_dir ../shared/data/binarized_mnist

Reads the run's config.json, restores its newest checkpoint and writes
``eval_<split>_k<k>.json`` beside it. (Disentanglement scores join here when
vae/metrics lands.)
"""

import json
import os

import jax
import ml_collections
from absl import app, flags, logging

_WORKDIR = flags.DEFINE_string("workdir", None, "A training run's folder.")
_SPLIT = flags.DEFINE_string("split", "validation", "Data split to evaluate.")
_K = flags.DEFINE_integer("num_samples", 5000, "Importance samples k.")
_MAX = flags.DEFINE_integer("max_examples", 0, "Evaluate the first N examples only (0: all).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Override the config's data_dir.")
flags.mark_flag_as_required("workdir")


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} not found: is {workdir} a training run's workdir?")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  from vae import checkpoint as ckpt_lib
  from vae import train as train_lib
  config = load_run_config(_WORKDIR.value)
  if _DATA_DIR.value is not None:
    config.data_dir = _DATA_DIR.value
  config.eval.num_importance_samples = _K.value
  config.eval.split = _SPLIT.value
  model, _, optimizer = train_lib.build(config)
  target = train_lib.init_state(jax.random.key(0), model, optimizer, config.objective)
  state = ckpt_lib.restore(_WORKDIR.value, target)
  data = train_lib.load_data(config, _SPLIT.value, _MAX.value)
  results = train_lib.evaluate_params(config, state.params, data,
                                      train_lib.named_keys(config.seed)["eval"])
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
  print(json.dumps(summary, indent=2))
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main)
