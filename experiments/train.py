"""Train and evaluate one configuration.

  python -m experiments.train      # default: beta-VAE on procedural dSprites, ~5 min on CPU

  python -m experiments.train --config experiments/configs/vae_binarized_mnist.py \
      --workdir /tmp/vae --config.data_dir=../shared/data/binarized_mnist

Rerunning with the same --workdir resumes from its last checkpoint (the same
config is required; see README, "What a run writes", for the exit codes).
"""

import json
import os

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import job as job_lib
from vae import parallel

# The default config is found beside this file, whatever the current directory.
_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs",
                               "default.py")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG, "Path to a get_config() file (default: configs/default.py "
    "of this package).")
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/default",
                                "Output folder (resumed if it exists).")


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  parallel.maybe_initialize_distributed(_CONFIG.value.get("distributed"))
  results = job_lib.exit_on_known_failure(job_lib.train_and_evaluate, _CONFIG.value,
                                          _WORKDIR.value)
  summary = {k: v for k, v in results.items() if not isinstance(v, (dict, list))}
  for k in ("elbo", "iwae"):
    if k in results:
      summary[k] = {kk: vv for kk, vv in results[k].items()
                    if not isinstance(vv, (list, dict))}
  if "active_units" in results:
    summary["active_units"] = results["active_units"]["active_units"]
  print(json.dumps(summary, indent=2))


if __name__ == "__main__":
  app.run(main)
