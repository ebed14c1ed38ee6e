"""Expand a config's hyperparameter sweep and seeds into runs, one workdir each.

A config file may define ``get_sweep()``: a list of points, each a dict of
dotted config paths to values (``{"hparams.beta_vae.beta": 4.0}``; tied values such as
DIP-VAE-I's ``lambda_d = 10 lambda_od`` are simply listed together). Every
point is crossed with every seed.

  # print one command per run and write <root>/sweep.json
  python -m experiments.sweep --config experiments/configs/beta_vae_dsprites.py \
      --root workdirs/beta_vae --seeds 0-4

  # or run them here, one after another (finished runs are skipped, an
  # interrupted one resumes from its last checkpoint)
  python -m experiments.sweep --config ... --root ... --seeds 0 --run \
      --set num_steps=2000

The printed commands are independent: hand them to a cluster scheduler.
"""

from __future__ import annotations

import ast
import importlib.util
import itertools
import json
import os
import shlex
from typing import Any, Iterable, Sequence

from absl import flags, logging

from vae import allocator
from vae import compile_cache

from . import cli
from . import configs

_CONFIG = flags.DEFINE_string("config", None, "A config with get_config() and get_sweep(): "
                              "its name (e.g. beta_vae_dsprites) or path.")
_ROOT = flags.DEFINE_string("root", None, "Folder that receives one workdir per run.")
_SEEDS = flags.DEFINE_string("seeds", "0", "Seeds: '0,1,2' or a range '0-49'.")
_SET = flags.DEFINE_multi_string("set", [], "Override for every run: path=value "
                                 "(e.g. num_steps=2000); repeatable.")
_RUN = flags.DEFINE_bool("run", False, "Run the sweep here instead of printing commands.")


def parse_seeds(text: str) -> list[int]:
  """'0,1,5' or '0-4' (inclusive) or a mix: '0-2,7'."""
  out: list[int] = []
  for part in text.split(","):
    part = part.strip()
    if not part:
      continue
    if "-" in part[1:]:
      a, b = part.split("-", 1)
      if int(b) < int(a):
        raise ValueError(f"seed range {part!r} runs backwards")
      out.extend(range(int(a), int(b) + 1))
    else:
      out.append(int(part))
  if not out:
    raise ValueError(f"no seeds in {text!r}")
  return out


def load_config_module(path: str):
  """Imports a config file by path (or a published config by name)."""
  try:
    path = configs.resolve(path)
  except ValueError:
    pass
  if not os.path.isfile(path):
    raise FileNotFoundError(f"config file {path!r} does not exist")
  spec = importlib.util.spec_from_file_location(
      "sweep_config_" + os.path.basename(path)[:-3], path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def _format(v: Any) -> str:
  if isinstance(v, float) and v.is_integer():
    return str(int(v))
  return str(v).replace("/", "_").replace(" ", "")


def run_name(point: dict[str, Any], seed: int) -> str:
  """A readable, unique folder name: 'beta=4,seed=0'."""
  parts = [f"{k.split('.')[-1]}={_format(v)}" for k, v in sorted(point.items())]
  return ",".join(parts + [f"seed={seed}"])


def expand(points: Sequence[dict[str, Any]], seeds: Iterable[int]) -> list[dict[str, Any]]:
  """Crosses points with seeds: a list of {"name", "overrides"} (overrides
  include ``seed``)."""
  runs = []
  for point, seed in itertools.product(points, list(seeds)):
    runs.append({"name": run_name(point, seed), "overrides": {**point, "seed": int(seed)}})
  names = [r["name"] for r in runs]
  if len(set(names)) != len(names):
    raise ValueError("the sweep repeats a point: " +
                     ", ".join(sorted({n for n in names if names.count(n) > 1})))
  return runs


def apply_overrides(config, overrides: dict[str, Any]):
  """Sets dotted paths on a ConfigDict (a copy); unknown paths are errors."""
  c = config.copy_and_resolve_references()
  for path, value in overrides.items():
    node = c
    *parents, leaf = path.split(".")
    for p in parents:
      if p not in node:
        raise KeyError(f"sweep override {path!r}: the config has no field {p!r}")
      node = node[p]
    if leaf not in node:
      raise KeyError(f"sweep override {path!r}: the config has no field {leaf!r}")
    old = node[leaf]
    # ConfigDict keeps field types; ints are accepted where floats were.
    node[leaf] = float(value) if isinstance(old, float) and isinstance(value, int) else value
  return c


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
  out = {}
  for item in items:
    if "=" not in item:
      raise ValueError(f"--set expects path=value, got {item!r}")
    k, v = item.split("=", 1)
    try:
      out[k.strip()] = ast.literal_eval(v)
    except (ValueError, SyntaxError):
      out[k.strip()] = v
  return out


def plan(config_path: str, root: str, seeds: Sequence[int],
         sets: dict[str, Any] | None = None) -> list[dict[str, Any]]:
  """Every run of a sweep: name, workdir, overrides, command, and the
  resolved config (validated)."""
  from . import job as job_lib
  mod = load_config_module(config_path)
  if not hasattr(mod, "get_sweep"):
    raise ValueError(f"{config_path} has no get_sweep(): nothing to sweep")
  base = mod.get_config()
  runs = expand(mod.get_sweep(), seeds)
  for r in runs:
    overrides = {**r["overrides"], **(sets or {})}
    r["config"] = apply_overrides(base, overrides)
    job_lib.check_config(r["config"])
    r["workdir"] = os.path.join(root, r["name"])
    args = [f"--config={config_path}", f"--workdir={r['workdir']}"]
    args += [f"--config.{k}={v}" for k, v in overrides.items()]
    r["command"] = "vae-train " + " ".join(shlex.quote(a) for a in args)
  return runs


def is_finished(run: dict[str, Any]) -> bool:
  split = run["config"].eval.split
  path = os.path.join(run["workdir"], f"eval_{split}.json")
  if not os.path.exists(path):
    return False
  with open(path) as f:
    return json.load(f).get("step") == int(run["config"].num_steps)


def run_sweep(config_path: str, root: str, seeds: Sequence[int],
              sets: dict[str, Any] | None = None, run: bool = False) -> list[dict[str, Any]]:
  """Writes ``root/sweep.json``; prints the commands, or (``run``) trains
  and evaluates every unfinished run in turn. Returns the runs."""
  from . import job as job_lib
  runs = plan(config_path, root, seeds, sets)
  os.makedirs(root, exist_ok=True)
  manifest = [{k: r[k] for k in ("name", "workdir", "overrides", "command")} for r in runs]
  with open(os.path.join(root, "sweep.json"), "w") as f:
    json.dump(manifest, f, indent=2)
  if not run:
    for r in runs:
      print(r["command"])
    return runs
  for i, r in enumerate(runs):
    if is_finished(r):
      print(f"[{i + 1}/{len(runs)}] {r['name']}: finished, skipped", flush=True)
      continue
    print(f"[{i + 1}/{len(runs)}] {r['name']} -> {r['workdir']}", flush=True)
    res = job_lib.train_and_evaluate(r["config"], r["workdir"])
    print(json.dumps({"name": r["name"], "elbo": res.get("elbo", {}).get("elbo")}), flush=True)
  return runs


def main(argv):
  allocator.tune()   # the malloc settings XLA:CPU needs (vae/allocator.py)
  compile_cache.enable()   # programs compiled once are read back (vae/compile_cache.py)
  del argv
  logging.set_verbosity(logging.WARNING)
  if not _CONFIG.value or not _ROOT.value:
    cli.usage_error("--config and --root are required")
  run_sweep(_CONFIG.value, _ROOT.value, parse_seeds(_SEEDS.value), parse_sets(_SET.value),
            _RUN.value)


def run():
  """The ``vae-sweep`` console script."""
  cli.run(main, doc=__doc__, module=__name__)


if __name__ == "__main__":
  run()
