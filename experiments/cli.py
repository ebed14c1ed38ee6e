"""The command line of every entry point (``vae-train``, ``vae-evaluate``,
``vae-sweep``, ``vae-study``, ``vae-benchmark``): absl flags, with

* ``--help`` (``-h``, ``--helpshort``) printing the script's docstring and
  its own flags, ``--helpfull`` every flag, both with exit 0;
* a flag error (an unknown flag, a bad value, a required flag missing, a
  misspelled config field, which absl would answer with a chain of
  tracebacks) said on one line with exit 2 (README, exit codes).
"""

from __future__ import annotations

import re
import sys
from typing import Callable, Sequence

from absl import app, flags

HELP = ("-h", "--help", "-help", "--helpshort", "-helpshort", "-?")
HELPFULL = ("--helpfull", "-helpfull")
USAGE_EXIT = 2


def usage_error(message: str) -> None:
  """Prints ``error: message`` and exits 2 (the code for bad flags)."""
  print(f"error: {message}\nPass --help for the flags.", file=sys.stderr, flush=True)
  sys.exit(USAGE_EXIT)


def config_field_error(error: BaseException, argv: Sequence[str]) -> str:
  """One line for ml_collections' error on a ``--config.FIELD`` override
  that names no field (a KeyError or AttributeError whose text holds
  "Did you mean ..."), naming the flag given."""
  text = str(error).replace("\\'", "'").replace("\\n", "\n")
  missing = re.search(r"'([^'\n]+)'", text)
  hint = re.search(r'Did you mean "([^"]+)"', text)
  field = missing.group(1) if missing else "?"
  given = next((a.split("=", 1)[0] for a in argv
                if a.startswith(("--config.", "-config.")) and field in a), None)
  return (f"{given or '--config.' + field}: the config has no field {field!r}"
          + (f"; did you mean {hint.group(1)!r}?" if hint else ""))


def _help(doc: str, module: str, full: bool) -> str:
  if full:
    return f"{doc.rstrip()}\n\n{flags.FLAGS.get_help()}"
  names = [module, sys.argv[0]] if module != "__main__" else [sys.argv[0], module]
  own = next((flags.FLAGS.module_help(n) for n in names
              if flags.FLAGS.flags_by_module_dict().get(n)), "")
  return f"{doc.rstrip()}\n\n{own}\n\n(--helpfull lists every flag.)"


def parse(argv: list[str], *, doc: str, module: str,
          prepare: Callable[[list[str]], list[str]] | None = None) -> list[str]:
  """absl's flag parsing with the behaviour of the module docstring.

  Args:
    argv: the command line.
    doc: what ``--help`` prints first (the script's docstring).
    module: the ``__name__`` of the module that defines the script's flags.
    prepare: rewrites ``argv`` before it is parsed (config names to paths);
      may raise ValueError for a usage error.
  """
  rest = argv[1:]
  if any(a in HELP for a in rest) or any(a in HELPFULL for a in rest):
    print(_help(doc, module, full=any(a in HELPFULL for a in rest)))
    sys.exit(0)
  try:
    if prepare is not None:
      argv = prepare(argv)
    return flags.FLAGS(argv)
  except flags.Error as e:
    usage_error(str(e))
  except (KeyError, AttributeError) as e:       # ml_collections: an override names no field
    usage_error(config_field_error(e, argv))
  except ValueError as e:
    usage_error(str(e))
  raise AssertionError("unreachable")


def run(main: Callable[[list[str]], None], *, doc: str, module: str,
        prepare: Callable[[list[str]], list[str]] | None = None) -> None:
  """``app.run(main)`` with ``parse`` as the flag parser."""
  app.run(main, flags_parser=lambda argv: parse(argv, doc=doc, module=module, prepare=prepare))
