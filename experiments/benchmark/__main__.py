"""``python -m experiments.benchmark``: the command of ``cli``."""

from absl import flags

from . import cli

# The benchmark's flags are the main module's: --help lists them.
flags.adopt_module_key_flags(cli)

if __name__ == "__main__":
  cli.run()
