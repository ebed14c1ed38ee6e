"""Records collected by name: each module of a package lists its records
(``OBJECTIVES``, ``DATASETS``) and the package's registry gathers them, so
adding one is one new module (docs/design.md, contract 9)."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any, Iterable


def collect(package_name: str, package_path: Iterable[str], attr: str,
            kind: str) -> dict[str, Any]:
  """{record.name: record} over ``attr`` of every module of the package, in
  name order.

  Raises:
    ValueError: two records of one name.
  """
  found: dict[str, Any] = {}
  for info in sorted(pkgutil.iter_modules(package_path), key=lambda i: i.name):
    module = importlib.import_module(f"{package_name}.{info.name}")
    for record in getattr(module, attr, ()):
      if record.name in found:
        raise ValueError(f"{kind} {record.name!r} is declared twice (in {info.name} and "
                         "before)")
      found[record.name] = record
  return dict(sorted(found.items()))


def lookup(registry: dict[str, Any], name: str, kind: str):
  """``registry[name]``, or a ValueError listing the known names."""
  if name not in registry:
    raise ValueError(f"{kind} must be one of {sorted(registry)}, got {name!r}")
  return registry[name]


def build(registry: dict[str, type], name: str, kind: str, hparams: dict[str, Any]):
  """An instance of the dataclass ``registry[name]`` from ``hparams`` (the rest
  at their defaults): a ValueError for an unknown name or hyperparameter,
  listing the known ones, or for a value its ``__post_init__`` refuses."""
  cls = lookup(registry, name, kind)
  known = [f.name for f in dataclasses.fields(cls)]
  unknown = sorted(set(hparams) - set(known))
  if unknown:
    raise ValueError(f"{kind} {name!r} has no hyperparameter(s) {unknown}; its "
                     f"hyperparameters are {known}")
  return cls(**hparams)


def dataclass_defaults(registry: dict[str, type]) -> dict[str, dict[str, Any]]:
  """{name: {field: default}} for a registry of dataclasses."""
  return {name: dataclasses.asdict(cls()) for name, cls in registry.items()}
