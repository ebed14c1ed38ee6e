"""Train and evaluate one configuration.

  vae-train                        # default: beta-VAE on procedural dSprites, ~2 min on CPU
  vae-train --config vae_binarized_mnist --workdir /tmp/vae --config.data_dir=DIR
  vae-train --list_configs         # every published config, with its summary

Flags: --config NAME|PATH, --workdir DIR (default workdirs/default),
--config.FIELD=VALUE for any field (e.g. --config.num_steps=1000),
--list_configs; --helpfull lists every flag.

(`python -m experiments.train` from a checkout is the same program.) --config
takes a config's name (with an optional variant: iwae_binarized_mnist:k50) or
the path of any get_config() file. Rerunning with the same --workdir resumes
from its last checkpoint (the same config is required; see README, "What a
run writes", for the exit codes).
"""

import json
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from . import configs
from . import build
from . import job as job_lib
from vae import allocator

__doc__ = (__doc__ or "") + "\nConfigs (--config NAME):\n" + configs.listing() + "\n"

# The default config is found inside the package, whatever the current directory.
_DEFAULT_CONFIG = configs.resolve("default")
_CONFIG = config_flags.DEFINE_config_file(
    "config", _DEFAULT_CONFIG, "A config name (see --list_configs), NAME:variant, or the "
    "path of a get_config() file; default: default.")
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/default",
                                "Output folder (resumed if it exists).")
_LIST = flags.DEFINE_boolean("list_configs", False,
                             "Print the published configs with their summaries and exit.")


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with config names resolved and --list_configs
  answered before any config is loaded."""
  if any(a in ("--list_configs", "-list_configs") for a in argv[1:]):
    print(configs.listing())
    sys.exit(0)
  try:
    argv = configs.resolve_config_names(argv)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f"error: {e}\nPass --help for the flags.", file=sys.stderr)
    sys.exit(2)


def main(argv):
  allocator.tune()   # the malloc settings XLA:CPU needs (vae/allocator.py)
  del argv
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  build.initialize_distributed(_CONFIG.value)
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


def run():
  """The ``vae-train`` console script."""
  sys.modules["__main__"].__doc__ = __doc__     # what --help prints
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
