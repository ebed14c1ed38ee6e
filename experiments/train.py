"""Train and evaluate one configuration.

  vae-train                        # the default job (quickstart): beta-TCVAE on dSprites, MIG
  vae-train --config vae_binarized_mnist --workdir /tmp/vae --config.data_dir=DIR
  vae-train --list_configs         # every published config, with its summary

Flags: --config NAME|PATH, --workdir DIR (default workdirs/default),
--config.FIELD=VALUE for any field (e.g. --config.num_steps=1000),
--list_configs; --helpfull lists every flag.

(`python -m experiments.train` from a checkout is the same program.) --config
takes a config's name (with an optional variant: iwae_binarized_mnist:k50) or
the path of any get_config() file. Rerunning with the same --workdir resumes
from its last checkpoint, or re-evaluates a finished run (the same config is
required; see README, "What a run writes", for the exit codes); without
--config, a workdir is continued with its own config.json:

  vae-train --workdir /tmp/vae                       # resume or re-evaluate
  vae-train --workdir /tmp/vae --config.num_steps=20000   # train it longer
"""

import json
import os
import sys

from absl import flags, logging
from ml_collections import config_flags

from . import cli
from . import configs

# JAX and the library are imported in main (and by prepare_argv for a stored
# config), after the first line is printed: they take seconds to import.

__doc__ = (__doc__ or "") + "\nConfigs (--config NAME):\n" + configs.listing() + "\n"

# The default job's config (quickstart.py; default.py names every field), found
# inside the package, whatever the current directory.
_DEFAULT_CONFIG = configs.resolve("quickstart")
# A workdir's own config.json, as a config file (``--config`` left out on a
# workdir that has one): get_config(workdir).
_STORED_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stored_config.py")
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/default",
                                "Output folder (resumed if it exists).")
_LIST = flags.DEFINE_boolean("list_configs", False,
                             "Print the published configs with their summaries and exit.")
_CONFIG = None     # defined by define_config_flag (ml_collections reads argv then)


def define_config_flag(argv: list[str]) -> None:
  """Defines ``--config`` (once). ml_collections checks the ``--config.FIELD``
  overrides of ``argv`` against the default config as it defines the flag, so
  a misspelled field is answered here, on one line with exit 2."""
  global _CONFIG
  if _CONFIG is not None:
    return
  saved, sys.argv = sys.argv, list(argv)
  try:
    _CONFIG = config_flags.DEFINE_config_file(
        "config", _DEFAULT_CONFIG, "A config name (see --list_configs), NAME:variant, or "
        "the path of a get_config() file; default: the workdir's own config.json when it "
        "has one, else quickstart (the default job).")
  except (KeyError, AttributeError) as e:
    cli.usage_error(cli.config_field_error(e, argv))
  finally:
    sys.argv = saved


def _workdir_of(argv: list[str]) -> str:
  for i, a in enumerate(argv):
    if a in ("--workdir", "-workdir") and i + 1 < len(argv):
      return argv[i + 1]
    if a.startswith(("--workdir=", "-workdir=")):
      return a.split("=", 1)[1]
  return _WORKDIR.default


def prepare_argv(argv: list[str]) -> list[str]:
  """Answers --list_configs; resolves config names to paths; without
  ``--config``, a workdir with a config.json is continued with that config
  (flags given on top are the changes asked for)."""
  if any(a in ("--list_configs", "-list_configs") for a in argv[1:]):
    print(configs.listing())
    sys.exit(0)
  if sys.stderr.isatty():     # a person waiting; a pipe gets one line per failure
    print("vae-train: starting (importing JAX)", file=sys.stderr, flush=True)
  has_config = any(a in ("--config", "-config") or a.startswith(("--config=", "-config="))
                   for a in argv[1:])
  workdir = _workdir_of(argv)
  if not has_config and os.path.exists(os.path.join(workdir, "config.json")):
    from . import rerun
    rerun.load_run_config(workdir)            # a broken config.json says so here
    argv = [argv[0], f"--config={_STORED_CONFIG}:{os.path.abspath(workdir)}"] + argv[1:]
    print(f"vae-train: continuing {workdir} with its config.json", file=sys.stderr,
          flush=True)
  define_config_flag(argv)
  return configs.resolve_config_names(argv)


def main(argv):
  del argv
  from vae import allocator
  allocator.tune()   # the malloc settings XLA:CPU needs (vae/allocator.py)
  from vae import compile_cache
  compile_cache.enable()   # programs compiled once are read back (vae/compile_cache.py)
  from . import build
  from . import job as job_lib
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
  if "disentanglement" in results:       # each score's headline value
    from vae import metrics as metrics_lib
    summary["disentanglement"] = metrics_lib.headlines(results["disentanglement"])
  print(json.dumps(summary, indent=2))


def run():
  """The ``vae-train`` console script."""
  cli.run(main, doc=__doc__, module=__name__, prepare=prepare_argv)


if __name__ == "__main__":
  run()
