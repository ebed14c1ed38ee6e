"""The table of models in README ("Models"): each model trained alike on
static binarized MNIST (the same 784-200-200 tanh MLP, batch 100, Adam,
``--steps`` steps with the learning rate decaying over them), evaluated alike
(ELBO and the IWAE log-likelihood with ``--k`` samples on the first
``--examples`` validation images), and one figure of every model's
reconstructions and prior samples.

  python -m experiments.model_zoo --data_dir ../shared/data/binarized_mnist \\
      --root workdirs/zoo [--steps 5000] [--models vae,planar]

Trains what is not finished (an interrupted run resumes; each run is an
ordinary ``experiments.train`` workdir; one evaluated at ``--steps`` is
left as it is), writes one results file per row, ``results/model_zoo/<row>.json``
(the numbers, the command, the machine), and from those files alone
``docs/model_zoo.md`` (the table, as README shows it); then draws
``docs/model_zoo.png`` from the workdirs. Rows marked "warm-up" weight the
KL by min(1, step / (steps / 2)) (Sonderby et al. 2016; the annealed free
energy of Rezende & Mohamed 2015, Sec. 6): without it, at this budget, the
learned priors collapse (VampPrior: KL 0 from step 1,000; two layers: one
active unit). A KL warm-up, where a
model uses one, lasts half of ``--steps``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from absl import flags

from . import cli

# (row name, config, extra flags, what the row shows, reference)
MODELS = (
    ("vae", "vae_binarized_mnist", (), "Gaussian q, N(0, I) prior (README's main job)",
     "Kingma & Welling (2014)"),
    ("vae_warmup", "vae_binarized_mnist", ("warmup",), "the same with the KL warm-up",
     "Sonderby et al. (2016)"),
    ("planar", "planar_binarized_mnist:k10", ("warmup",), "10 planar flows on q",
     "Rezende & Mohamed (2015)"),
    ("iaf", "iaf_binarized_mnist", ("warmup",), "2 IAF steps on q", "Kingma et al. (2016)"),
    ("vampprior", "vampprior_binarized_mnist", ("warmup",), "VampPrior, K = 500",
     "Tomczak & Welling (2018)"),
    ("two_layer", "two_layer_binarized_mnist", ("warmup",), "two stochastic layers (100, 50)",
     "Burda et al. (2016)"),
    ("info_vae", "info_vae_binarized_mnist", (), "InfoVAE (MMD-VAE), lambda = 1000",
     "Zhao et al. (2019)"),
    ("wae_mmd", "wae_mmd_binarized_mnist", (), "WAE-MMD, lambda = 10, IMQ",
     "Tolstikhin et al. (2018)"),
    ("vq_vae", "vq_vae_binarized_mnist", (), "VQ-VAE, 8 x 128 codes, EMA",
     "van den Oord et al. (2017)"),
)

_DATA_DIR = flags.DEFINE_string("data_dir", None, "The binarized MNIST .npz folder.")
_ROOT = flags.DEFINE_string("root", "workdirs/zoo", "Where the runs' workdirs go.")
_STEPS = flags.DEFINE_integer("steps", 5000, "Training steps of each model (100 per batch).")
_K = flags.DEFINE_integer("k", 1000, "Importance samples of the IWAE log-likelihood.")
_EXAMPLES = flags.DEFINE_integer("examples", 1000, "Validation images evaluated.")
_MODELS = flags.DEFINE_list("models", [m[0] for m in MODELS], "Rows to train and report.")
_DOCS = flags.DEFINE_string("docs", "docs", "Where the table and the figure go.")
_RESULTS = flags.DEFINE_string("results", "results", "Where results/model_zoo/<row>.json go.")
flags.mark_flag_as_required("data_dir")


def train_command(name: str, root: str, data_dir: str, steps: int, k: int, examples: int):
  """The ``experiments.train`` command line of one row."""
  _, spec, extra, _, _ = next(m for m in MODELS if m[0] == name)
  cmd = [sys.executable, "-m", "experiments.train", "--config", spec,
         "--workdir", os.path.join(root, name), f"--config.data_dir={os.path.abspath(data_dir)}",
         "--config.batch_size=100",      # alike, whatever a config's own batch
         f"--config.num_steps={steps}", f"--config.optim.decay_steps={steps}",
         "--config.eval_every=0", f"--config.checkpoint_every={steps}",
         f"--config.log_every={max(steps // 10, 1)}", f"--config.eval.max_examples={examples}",
         f"--config.eval.num_importance_samples={k}"]
  if "warmup" in extra:
    cmd.append(f"--config.hparams.vae.warmup_steps={steps // 2}")
  return cmd


def row(name: str, root: str) -> dict:
  """One row of the table from a finished workdir's files."""
  wd = os.path.join(root, name)
  with open(os.path.join(wd, "eval_validation.json")) as f:
    ev = json.load(f)
  with open(os.path.join(wd, "metrics.jsonl")) as f:
    train = [json.loads(l) for l in f if '"train"' in l]
  last = train[-1] if train else {}
  return {"name": name, "elbo": ev["elbo"]["elbo"], "log_likelihood": ev["elbo"]["log_likelihood"],
          "kl": ev["elbo"]["kl"], "iwae": (ev.get("iwae") or {}).get("log_likelihood"),
          "k": (ev.get("iwae") or {}).get("num_samples"),
          "active_units": (ev.get("active_units") or {}).get("active_units"),
          "perplexity": last.get("perplexity"), "mmd": last.get("mmd"),
          "train_seconds": ev.get("train_seconds_this_run"), "step": ev["step"],
          "examples": ev["num_examples"]}


def table(rows: list[dict]) -> str:
  """The markdown table of ``rows``."""
  what = {m[0]: (m[3], m[4]) for m in MODELS}
  fmt = lambda v, d=2: "" if v is None else f"{v:.{d}f}"
  lines = ["| model | reference | IWAE log p(x) | ELBO | reconstruction | KL | "
           "active units | other | train (s) |", "|" + " --- |" * 9]
  for r in rows:
    other = (f"perplexity {r['perplexity']:.1f} / 128" if r["perplexity"] is not None else
             f"MMD {r['mmd']:.4f}" if r["mmd"] is not None else "")
    lines.append(f"| {r['name']}: {what[r['name']][0]} | {what[r['name']][1]} | "
                 f"{fmt(r['iwae'])} | {fmt(r['elbo'])} | {fmt(r['log_likelihood'])} | "
                 f"{fmt(r['kl'])} | {r['active_units']} | {other} | "
                 f"{fmt(r['train_seconds'], 0)} |")
  return "\n".join(lines)


def figure(names: list[str], root: str, path: str, num: int = 8) -> str:
  """One row per model: ``num`` reconstructions of the same validation images,
  then ``num`` samples from its prior (decoder means)."""
  import jax
  import numpy as np

  from vae import plots

  from . import job as job_lib
  rows, data = [], None
  for name in names:
    wd = os.path.join(root, name)
    job = job_lib.resolve(job_lib.load_run_config(wd))
    state = job_lib.restore_state(wd, job)
    data = np.asarray(job.eval_data[:num]) if data is None else data
    recon = plots.reconstructions(state.params, data, model=job.model)[num:]
    samples = plots.prior_samples(state.params, jax.random.key(0), num, model=job.model)
    rows.append(np.concatenate([recon, samples]))
  grid = np.concatenate([np.concatenate([data, np.full_like(data, 0.5)])] + rows)
  return plots.save_grid(path, grid, 2 * num, row_labels=["data"] + names,
                         title=f"left: reconstructions of the first {num} validation images "
                               "(top row: the images); right: samples from the prior")


def _finished(workdir: str, steps: int) -> bool:
  try:
    with open(os.path.join(workdir, "eval_validation.json")) as f:
      return json.load(f)["step"] == steps
  except (OSError, ValueError, KeyError):
    return False


def main(argv):
  del argv
  from absl import logging
  logging.set_verbosity(logging.WARNING)
  root, names = _ROOT.value, list(_MODELS.value)
  unknown = sorted(set(names) - {m[0] for m in MODELS})
  if unknown:
    cli.usage_error(f"--models: unknown rows {unknown}; rows: {[m[0] for m in MODELS]}")
  for name in names:
    if _finished(os.path.join(root, name), _STEPS.value):
      print(f"{name}: finished", flush=True)
      continue
    t0 = time.time()
    cmd = train_command(name, root, _DATA_DIR.value, _STEPS.value, _K.value, _EXAMPLES.value)
    code = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode
    print(f"{name}: exit {code} in {time.time() - t0:.0f} s", flush=True)
    if code:
      sys.exit(code)
  from .machine import machine
  out_dir = os.path.join(_RESULTS.value, "model_zoo")
  os.makedirs(out_dir, exist_ok=True)
  for n in names:
    cmd = train_command(n, root, _DATA_DIR.value, _STEPS.value, _K.value, _EXAMPLES.value)
    record = {**row(n, root), "command": " ".join(["python"] + cmd[1:]), "machine": machine()}
    with open(os.path.join(out_dir, f"{n}.json"), "w") as f:
      json.dump(record, f, indent=2)
  rows = []
  for n in [m[0] for m in MODELS]:          # the table: every row with a results file
    path = os.path.join(out_dir, f"{n}.json")
    if os.path.exists(path):
      with open(path) as f:
        rows.append(json.load(f))
  md = table(rows)
  os.makedirs(_DOCS.value, exist_ok=True)
  with open(os.path.join(_DOCS.value, "model_zoo.md"), "w") as f:
    f.write(md + "\n")
  print(md)
  print(figure(names, root, os.path.join(_DOCS.value, "model_zoo.png")))


if __name__ == "__main__":
  cli.run(main, doc=__doc__, module=__name__)
