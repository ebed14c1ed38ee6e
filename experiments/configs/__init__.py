"""The published configs: one ``get_config()`` file each, found by name.

``available()`` lists them with the first paragraph of each docstring (its
summary, read with ``ast``: nothing is imported); ``resolve(spec)`` turns a bare name
(``vae_binarized_mnist``, or with a variant ``iwae_binarized_mnist:k50``)
into the file's path, and leaves the path of an existing file as it is (a
folder named like a config, such as a workdir, does not shadow the name).
"""

from __future__ import annotations

import ast
import difflib
import os

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))


def available() -> dict[str, str]:
  """{name: the first paragraph of its docstring, on one line} for every
  config file here."""
  out = {}
  for fname in sorted(os.listdir(CONFIG_DIR)):
    if not fname.endswith(".py") or fname.startswith("_"):
      continue
    with open(os.path.join(CONFIG_DIR, fname)) as f:
      doc = ast.get_docstring(ast.parse(f.read())) or ""
    out[fname[:-3]] = " ".join(doc.strip().split("\n\n")[0].split())
  return out


def listing() -> str:
  """The configs as aligned lines: ``name  first docstring line``."""
  configs = available()
  width = max(map(len, configs))
  return "\n".join(f"  {name:<{width}}  {line}" for name, line in configs.items())


def resolve(spec: str) -> str:
  """A config path (``path[:variant]``) for a bare name or a path.

  Raises:
    ValueError: neither an existing file nor a config name (the message
      lists the names).
  """
  path, sep, variant = spec.partition(":")
  if os.path.isfile(path):
    return spec
  name = path[:-3] if path.endswith(".py") else path
  if os.sep not in name and name in available():
    return os.path.join(CONFIG_DIR, name + ".py") + sep + variant
  close = difflib.get_close_matches(name, list(available()), n=1)
  hint = f" (did you mean {close[0]!r}?)" if close else ""
  raise ValueError(f"--config {spec!r} is neither a file nor a config name{hint}; the configs "
                   f"are:\n{listing()}")


def resolve_config_names(argv: list[str]) -> list[str]:
  """``argv`` with a bare config name after ``--config`` replaced by its path
  (before absl parses it: the config flag loads the file it names)."""
  out, i = list(argv), 1
  while i < len(out):
    arg = out[i]
    if arg in ("--config", "-config") and i + 1 < len(out):
      out[i + 1] = resolve(out[i + 1])
      i += 1
    elif arg.startswith(("--config=", "-config=")):
      flag, value = arg.split("=", 1)
      out[i] = f"{flag}={resolve(value)}"
    i += 1
  return out
