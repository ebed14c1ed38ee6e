"""The main job: train, evaluate, score, record and draw one config; the
thin join of the experiment layer, one concept per module:

* ``config_checks``: the config's values checked before anything runs;
* ``rerun``: a workdir continued only with its own config and data (old
  ``config.json`` files read with today's defaults);
* ``build`` / ``resolve``: the config turned into the library's objects (a
  ``Job``); config stops there;
* ``record``: evaluate, score and record (also ``experiments.evaluate``);
* ``exits``: the entry points' exit codes, from one table.

``train_and_evaluate(config, workdir)`` is what ``python -m experiments.train``
runs: it locks the workdir, refuses a rerun whose config changed what is
trained, stores data folders as absolute paths, trains (resuming), and fails
with ``NonFiniteEvaluationError`` when the final evaluation is not finite
(after writing it as strict JSON).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from vae import checks
from vae import evaluate as ev
from vae import train as train_lib
from vae import workdir as workdir_lib
from vae import writers as writers_lib
from vae.data import sources

from .build import (build_model, build_objective, build_optimizer, data_settings, eval_spec,
                    objective_hparams, schedule)
from .config_checks import check_config
from .exits import EXIT_CODES, exit_on_known_failure
from .record import (SCORE_KEY, NonFiniteEvaluationError, evaluate_and_record, score_key,
                     write_figures)
from .rerun import (RERUN_MAY_CHANGE, ConfigChangedError, absolute_paths, check_rerun,
                    check_rerun_data, check_unrecorded_checkpoints, config_changes,
                    load_run_config, upgrade_config, with_defaults)
from .resolve import Job, load_split, open_data, resolve, restore_params, restore_state

# The experiment layer's names, for scripts and notebooks that import the job.
__all__ = ["train", "train_job", "train_and_evaluate", "Job", "resolve", "open_data",
           "load_split", "restore_params", "restore_state", "check_config", "check_rerun",
           "check_rerun_data", "config_changes", "load_run_config", "upgrade_config",
           "with_defaults", "absolute_paths", "RERUN_MAY_CHANGE", "ConfigChangedError",
           "NonFiniteEvaluationError", "EXIT_CODES", "exit_on_known_failure", "SCORE_KEY",
           "evaluate_and_record", "write_figures", "build_model", "build_objective",
           "build_optimizer", "objective_hparams", "schedule", "eval_spec", "data_settings"]


def train(config, workdir: str, train_data=None, *, eval_fn=None, progress: bool = True,
          labels=None):
  """Trains a config on ``train_data`` (default: the config's own training
  data) without evaluating: ``vae.train.train`` with the config's objects.
  ``labels``: ``train_data``'s ``vae.data.Labels`` for a conditional model.

  Returns:
    The final ``TrainState``.
  """
  check_rerun(config, workdir)
  if train_data is None:
    check_config(config)
    data = open_data(config, with_eval=False)
    train_data, labels = data.train, data.labels
  return train_job(resolve(config, train_data=train_data, labels=labels), workdir,
                   eval_fn=eval_fn, progress=progress)


def train_job(job: Job, workdir: str, *, eval_fn=None, progress: bool = True, writers=None):
  """Trains a resolved ``Job`` (``vae.train.train`` with its objects)."""
  source = sources.make_source(job.train_data, job.batch_size, job.keys["data"], model=job.model,
                               prefetch=job.prefetch_batches, labels=job.labels)
  return train_lib.train(workdir, model=job.model, objective=job.objective,
                         optimizer=job.optimizer, source=source, schedule=job.schedule,
                         seed=job.seed, eval_fn=eval_fn, progress=progress, writers=writers)


def train_and_evaluate(config, workdir: str, writers=(), progress: bool = True) -> dict[str, Any]:
  """The main job: train (resuming if possible), evaluate, write figures.

  Writes to ``workdir``: ``config.json`` (the config, plus the effective
  objective hyperparameters), ``checkpoints/``, ``metrics.jsonl``,
  ``tensorboard/`` (with ``config.tensorboard``: the same rows, the final
  evaluation under ``final/`` and the figures), ``eval_<split>.json``,
  ``reconstructions.png`` and, for probabilistic models, ``traversals.png``,
  ``traversals.gif`` and ``prior_samples.png``. ``writers``: more
  ``vae.writers.MetricWriter``s (e.g. Weights & Biases) to send the same to.
  ``progress``: bars for training, evaluation and scoring (on stderr).
  The workdir is locked for the whole job (``vae.workdir.lock``); a rerun
  must have the stored config (``check_rerun``).

  Returns:
    The evaluation dict written to ``eval_<split>.json``.

  Raises:
    vae.checks.InputError: the config or its data were refused before
      anything ran (the message says what was expected and what came).
    ConfigChangedError: the workdir was trained with another config.
    vae.workdir.WorkdirLockedError: another process is using the workdir.
    vae.train.NonFiniteLossError: training diverged (last good checkpoint kept).
    NonFiniteEvaluationError: the final evaluation is not finite (written
      with nulls and a ``non_finite`` list first).
  """
  config = absolute_paths(config)
  say = Say(progress)
  say(f"opening the data ({config.dataset}) for {workdir}")
  try:
    job = resolve(config)
  except (ValueError, TypeError, FileNotFoundError) as e:
    # Refused before anything ran: the config's or the data's to fix (exit 2).
    raise checks.InputError(str(e)) from e
  with workdir_lib.lock(workdir):
    check_rerun(config, workdir)
    check_rerun_data(job, workdir)
    if check_unrecorded_checkpoints(job, workdir):
      print(f"{workdir} had checkpoints but no config.json; they fit this config, so "
            "config.json is written again from it", file=sys.stderr, flush=True)
    stored = json.loads(config.to_json_best_effort())
    stored["effective"] = job.effective_config()
    workdir_lib.write_json(os.path.join(workdir, "config.json"), stored, indent=2)
    out = writers_lib.Writers(
        writers_lib.default_writers(workdir, bool(config.get("tensorboard", True)))
        + list(writers))
    try:
      return _train_and_evaluate(job, workdir, out, progress, say)
    finally:
      out.close()


class Say:
  """One progress line on stderr, with the seconds since the job started
  (nothing when ``on`` is False)."""

  def __init__(self, on: bool = True):
    self.on, self.t0 = bool(on), time.perf_counter()

  def __call__(self, what: str) -> None:
    if self.on:
      print(f"[{time.perf_counter() - self.t0:6.1f} s] {what}", file=sys.stderr, flush=True)


def _train_and_evaluate(job: Job, workdir: str, out, progress: bool = True,
                        say: Say | None = None) -> dict[str, Any]:
  say = say or Say(False)
  keys, model, spec = job.keys, job.model, job.eval_spec
  probabilistic = job.objective.record.probabilistic
  eval_fn = ev.periodic_eval_fn(job.eval_set, keys["eval"], model=model, spec=spec,
                                dataset_size=job.num_train, probabilistic=probabilistic,
                                ground_truth=job.ground_truth_data,
                                score_key=score_key(job))
  t0 = time.perf_counter()
  say("setting up the parameters (or restoring the last checkpoint)")
  state = train_job(job, workdir, eval_fn=eval_fn, writers=out, progress=progress)
  train_seconds = time.perf_counter() - t0
  step = int(state.step)
  say(f"evaluating step {step}")
  path = os.path.join(workdir, f"eval_{spec.split}.json")
  results, bad = evaluate_and_record(
      state.params, step, job, path, progress=progress,
      extra={"train_seconds_this_run": train_seconds,
             "epochs": step * job.batch_size / job.num_train})
  out.write_scalars(step, "final", results)
  if bad:
    raise NonFiniteEvaluationError(
        f"the evaluation at step {step} is not finite ({', '.join(bad)}): the "
        f"model has diverged. {path} holds null for those values and lists them under "
        "\"non_finite\"; the checkpoints are kept. Lower optim.learning_rate or set "
        "optim.grad_clip_norm, and train in a new workdir.")
  say("drawing the figures")
  figures = write_figures(workdir, state.params, job, results)
  out.write_images(int(state.step), {os.path.splitext(os.path.basename(f))[0]:
                                     writers_lib.read_png(f) for f in figures})
  say(f"done: {path}")
  return results
