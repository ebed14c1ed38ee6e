"""A study's report: from its committed results files to a table and figures.

``report(study, results_root, docs)`` reads ``<results_root>/<study>/*.json``
(what ``vae-study run`` writes; nothing is recomputed), and writes

* ``<docs>/study_<study>.md``: per method, the median, min-max and every seed
  of each score and of the ELBO, IWAE log-likelihood, reconstruction and KL,
  with the budget and the scoring cost;
* ``<docs>/study_<study>_scores.png``: every seed's final scores per method
  (not for a study without scores, such as one of likelihoods);
* ``<docs>/study_<study>_curves.png``: score against step for one seed
  (the lowest) of each method, from the periodic evaluations.

It returns the markdown. ``table_rows`` gives the same numbers as data.
"""

from __future__ import annotations

import glob
import json
import os
import statistics
from typing import Any

import numpy as np

# (column, how to read it from a results file, digits)
def _score(metric: str):
  return lambda r: _headlines(r).get(metric)


def _headlines(point) -> dict:
  """{metric: headline score} of a results file or a point of its curve."""
  from vae import metrics as metrics_lib
  return metrics_lib.headlines(point.get("scores") or {})


def _curve(record, metric: str) -> list[tuple[int, float]]:
  """(step, score) of ``metric`` along a run's curve, where it was scored."""
  return [(p["step"], v) for p in record.get("curve", [])
          if (v := _headlines(p).get(metric)) is not None]


METRIC_ORDER = ("mig", "factor_vae", "beta_vae", "dci", "sap", "modularity")
METRIC_LABELS = {"mig": "MIG", "factor_vae": "FactorVAE score", "beta_vae": "BetaVAE score",
                 "dci": "DCI disentanglement", "sap": "SAP", "modularity": "modularity"}
OTHER_COLUMNS = (("ELBO (nats)", lambda r: r.get("elbo"), 1),
                 ("IWAE log p(x) (nats)", lambda r: (r.get("iwae") or {}).get("log_likelihood"),
                  2),
                 ("reconstruction (nats)", lambda r: r.get("log_likelihood"), 1),
                 ("KL (nats)", lambda r: r.get("kl"), 2),
                 ("active latents", lambda r: r.get("active_units"), 0),
                 ("training (min)", lambda r: r.get("train_seconds", 0) / 60, 1),
                 ("scoring (s)", lambda r: r.get("scoring_seconds") if r.get("scores") else None,
                  0))


def load(results_root: str, study: str) -> list[dict[str, Any]]:
  """Every results file of a study, sorted by method then seed."""
  out = []
  for path in sorted(glob.glob(os.path.join(results_root, study, "*.json"))):
    with open(path) as f:
      out.append(json.load(f))
  return sorted(out, key=lambda r: (r.get("method", ""), r.get("seed", 0)))


def _metrics_present(records) -> list[str]:
  seen = {m for r in records for m in r.get("scores", {})}
  return [m for m in METRIC_ORDER if m in seen]


def _methods(records, study=None) -> list[str]:
  order = [r.method for r in study.runs] if study is not None else []
  names = list(dict.fromkeys(order + [r["method"] for r in records]))
  return [m for m in names if any(r["method"] == m for r in records)]


def table_rows(records, study=None) -> list[dict[str, Any]]:
  """One row per (method, quantity): ``median``, ``min``, ``max`` and
  ``seeds`` ({seed: value}), over the finished runs."""
  rows = []
  columns = [(METRIC_LABELS[m], _score(m), 3) for m in _metrics_present(records)]
  columns += list(OTHER_COLUMNS)
  for method in _methods(records, study):
    done = [r for r in records if r["method"] == method and r["status"] == "finished"]
    for label, get, digits in columns:
      vals = {r["seed"]: get(r) for r in done if get(r) is not None}
      # (a score the run could not compute, written as null, is left out)
      if not vals:
        continue
      v = list(vals.values())
      rows.append({"method": method, "quantity": label, "digits": digits,
                   "median": statistics.median(v), "min": min(v), "max": max(v),
                   "seeds": vals, "n": len(v)})
  return rows


def _fmt(x, digits):
  return f"{x:.{digits}f}" if digits else f"{x:.0f}"


def markdown(records, study=None, study_name: str = "") -> str:
  """The report's text: budget, table, failed runs."""
  name = study.name if study is not None else study_name
  lines = [f"# Study `{name}`", ""]
  if study is not None:
    lines += [study.description, ""]
  budgets = sorted({r["budget"] for r in records})
  batches = sorted({r["config"]["batch_size"] for r in records if r.get("config")})
  machines = sorted({f"{r['machine']['cpu']} ({r['machine']['cpus_used']} CPU)"
                     for r in records if r.get("machine")})
  finished = [r for r in records if r["status"] == "finished"]
  iwae = sorted({(r["iwae"]["num_samples"], r.get("eval_examples")) for r in finished
                 if r.get("iwae")})
  lines += [f"Budget: {', '.join(f'{b:,}' for b in budgets)} steps at batch "
            f"{', '.join(str(b) for b in batches) or 'n/a'}. "
            f"Runs: {len(finished)} finished, {len(records) - len(finished)} failed"
            + (f", {sum(r.name not in {x['run'] for x in records} for r in study.runs)} to do"
               if study is not None else "")
            + f". Trained on: {'; '.join(machines) or 'n/a'}."
            + "".join(f" IWAE: k = {k:,} importance samples on {n:,} held-out examples."
                      for k, n in iwae if n), ""]
  rows = table_rows(records, study)
  # The summary: methods down, quantities across, "median [min, max]".
  quantities = list(dict.fromkeys(r["quantity"] for r in rows))
  lines += ["| method | seeds | " + " | ".join(quantities) + " |",
            "| --- | --- |" + " --- |" * len(quantities)]
  for method in _methods(records, study):
    mine = {r["quantity"]: r for r in rows if r["method"] == method}
    n = max((r["n"] for r in mine.values()), default=0)
    cells = []
    for q in quantities:
      r = mine.get(q)
      cells.append("" if r is None else (
          _fmt(r["median"], r["digits"]) if r["n"] == 1 else
          f"{_fmt(r['median'], r['digits'])} [{_fmt(r['min'], r['digits'])}, "
          f"{_fmt(r['max'], r['digits'])}]"))
    lines.append(f"| {method} | {n} | " + " | ".join(cells) + " |")
  lines += ["", "Median [min, max] over seeds. Every seed:", "",
            "| method | quantity | every seed |", "| --- | --- | --- |"]
  for r in rows:
    d = r["digits"]
    seeds = ", ".join(f"s{s}: {_fmt(v, d)}" for s, v in sorted(r["seeds"].items()))
    lines.append(f"| {r['method']} | {r['quantity']} | {seeds} |")
  failed = [r for r in records if r["status"] != "finished"]
  if failed:
    lines += ["", "Failed runs:", ""]
    lines += [f"- {r['run']} at step {r['steps']}: {r['error']['type']}: "
              f"{r['error']['message'][:200]}" for r in failed]
  sources = {r["method"]: r.get("source") for r in records if r.get("source")}
  if sources:
    lines += ["", "Hyperparameters:", ""]
    lines += [f"- {m}: {s}" for m, s in sources.items()]
  return "\n".join(lines) + "\n"


def plot_scores(path: str, records, study=None) -> str:
  """Every finished seed's final score per method, one panel per metric."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  metrics = _metrics_present(records)
  methods = _methods(records, study)
  cols = min(max(len(metrics), 1), 3)
  rows = -(-max(len(metrics), 1) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows), squeeze=False)
  for ax in axes.flat[len(metrics):]:
    ax.axis("off")
  for ax, m in zip(axes.flat, metrics):
    get = _score(m)
    for i, method in enumerate(methods):
      v = [get(r) for r in records if r["method"] == method and r["status"] == "finished"
           and get(r) is not None]
      if v:
        ax.scatter([i] * len(v), v, s=14, alpha=0.8)
        ax.hlines(statistics.median(v), i - 0.3, i + 0.3, color="k", lw=1)
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(methods, rotation=60, ha="right", fontsize=7)
    ax.set_title(METRIC_LABELS[m], fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def plot_curves(path: str, records, study=None) -> str:
  """Score against step for the lowest seed of each method, one panel per
  metric scored during training, plus the ELBO."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  chosen = {}
  for r in records:
    if r["status"] == "finished" and r.get("curve") and (r["method"] not in chosen or r["seed"] < chosen[r["method"]]["seed"]):
      chosen[r["method"]] = r
  metrics = [m for m in METRIC_ORDER
             if any("scores" in p and m in p["scores"] for r in chosen.values()
                    for p in r["curve"])]
  panels = metrics + ["elbo"]
  fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.2), squeeze=False)
  for ax, m in zip(axes[0], panels):
    for method in _methods(list(chosen.values()), study):
      r = chosen[method]
      if m == "elbo":
        pts = [(p["step"], p["elbo"]) for p in r["curve"] if p.get("elbo") is not None]
      else:
        pts = _curve(r, m)
      if pts:
        ax.plot(*zip(*pts), marker="o", ms=3, label=f"{method} (seed {r['seed']})")
    ax.set_title("ELBO (nats)" if m == "elbo" else METRIC_LABELS[m], fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(
        lambda v, _: f"{v / 1000:g}k" if v else "0"))
    ax.tick_params(labelsize=7)
  axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def latent_labels(record, factor_names) -> dict[int, str]:
  """{latent: "z3  KL 2.41  posX (0.62)"}: each latent's KL and the factor it
  informs most, by its mutual information divided by the factor's entropy
  (``vae.metrics.latent_factors``, from the run's final MIG)."""
  from vae import plots
  from . import record as record_lib
  notes = record_lib.factor_notes(record["scores"]["mig"], factor_names)
  return {d: plots.row_label(d, record["kl_per_dim"], notes)
          for d in range(len(record["kl_per_dim"]))}


def traversal_gifs(study, results_root: str, workroot: str, docs: str, methods=None,
                   count: int = 3, metric: str = "mig") -> list[str]:
  """Labelled traversal GIFs of the best seed (by ``metric``) of ``methods``
  (default: the ``count`` methods of highest median ``metric``), drawn from
  the runs' checkpoints under ``workroot`` (runs trained elsewhere are
  skipped, with a message). Rows are latents by KL, each labelled with its
  KL and the factor it informs most (``latent_labels``)."""
  from vae import plots
  from vae.data import dsprites
  from . import job as job_lib
  import jax.numpy as jnp
  get = _score(metric)
  records = [r for r in load(results_root, study.name)
             if r["status"] == "finished" and get(r) is not None]
  if methods is None:
    med = {m: statistics.median(get(r) for r in records if r["method"] == m)
           for m in _methods(records, study)}
    methods = sorted(med, key=lambda m: -med[m])[:count]
  gt = dsprites.DSprites()
  # A heart at the middle scale, unrotated, in the centre.
  x = np.asarray(gt.observations(jnp.asarray([[2, 3, 0, 16, 16]], jnp.int32)))[0]
  paths = []
  for method in methods:
    mine = [r for r in records if r["method"] == method]
    if not mine:
      continue
    best = max(mine, key=get)
    workdir = os.path.join(workroot, study.name, best["run"])
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
      print(f"{best['run']}: no checkpoints under {workdir} (trained on another machine?); "
            "no GIF")
      continue
    model, params = job_lib.restore_params(workdir)
    slug = best["run"].split("-seed")[0]
    path = os.path.join(docs, f"study_{study.name}_{slug}_traversals.gif")
    plots.save_traversal_gif(path, params, x, model=model, kl_per_dim=best["kl_per_dim"],
                             scale=1, row_labels=latent_labels(best, gt.factor_names))
    print(f"{path}: {best['run']}, {metric} {get(best):.3f}")
    paths.append(path)
  return paths


def steps_to_fraction(record, metric: str, fraction: float = 0.9) -> int | None:
  """The first step of a run's curve from which ``metric`` stays at or above
  ``fraction`` of its value at the last point (None: no scores). A score that
  reaches it early and falls back does not count until it is back for good."""
  pts = _curve(record, metric)
  if not pts:
    return None
  target = fraction * pts[-1][1]
  step = pts[-1][0]
  for s, v in reversed(pts):
    if v < target:
      break
    step = s
  return step


def budget(records, metrics=("mig", "sap"), fraction: float = 0.9, floor: int = 20_000,
           multiple: int = 5_000) -> tuple[int, list[tuple[str, str, int | None]]]:
  """A study budget from a pilot's curves: the largest ``steps_to_fraction``
  over its runs and ``metrics``, rounded up to ``multiple``, at least
  ``floor``; and the (run, metric, steps) it was taken from."""
  rows = [(r["run"], m, steps_to_fraction(r, m, fraction))
          for r in records if r["status"] == "finished" for m in metrics]
  steps = max([s for _, _, s in rows if s is not None], default=floor)
  return max(floor, -(-steps // multiple) * multiple), rows


def report(study, results_root: str, docs: str) -> str:
  """Writes the study's markdown and figures to ``docs``; returns the markdown."""
  records = load(results_root, study.name)
  if not records:
    raise FileNotFoundError(f"no results under {os.path.join(results_root, study.name)}: "
                            f"run `vae-study run {study.name}` first")
  os.makedirs(docs, exist_ok=True)
  text = markdown(records, study)
  scored = bool(_metrics_present(records))
  if scored and all(len(r.get("curve", [])) > 1 for r in records if r["status"] == "finished"):
    chosen, rows = budget(records)
    text += ("\nSteps from which each score stays at or above 90% of its value at the "
             f"last step ({records[0]['budget']:,}):\n\n| run | metric | steps |\n"
             "| --- | --- | --- |\n")
    text += "".join(f"| {run} | {METRIC_LABELS[m]} | {s if s is None else f'{s:,}'} |\n"
                    for run, m, s in rows)
    text += (f"\nA budget from these curves (the largest, rounded up to 5,000 steps, at "
             f"least 20,000): **{chosen:,} steps**, against the {records[0]['budget']:,} "
             "trained. Where the two are equal, a score was still rising "
             "near the end.\n")
  if scored:      # (a study of likelihoods, without scores, has no score figure)
    scores = plot_scores(os.path.join(docs, f"study_{study.name}_scores.png"), records, study)
    text += f"\n![final scores]({os.path.basename(scores)})\n"
  curves = plot_curves(os.path.join(docs, f"study_{study.name}_curves.png"), records, study)
  text += f"\n![learning curves]({os.path.basename(curves)})\n"
  with open(os.path.join(docs, f"study_{study.name}.md"), "w") as f:
    f.write(text)
  return text
