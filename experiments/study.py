"""Run a named study (``experiments/studies.py``) and report it.

  vae-study run pilot                  # train, score and record every unfinished run
  vae-study run pilot --workers 2      # two processes, one CPU each (faster on 2 cores)
  vae-study status pilot               # which runs are finished, failed, parked or to do
  vae-study park pilot                 # pack each unfinished run's newest checkpoint into
                                       # results/pilot/parked/ (commit it; resumes elsewhere)
  vae-study unpark pilot               # unpack them into --workroot (`run` does this itself)
  vae-study report pilot               # table and figures from results/pilot/*.json
  vae-study gifs pilot                 # labelled traversal GIFs of the best seeds (needs
                                       # the runs' workdirs: on the machine that trained them)

``run`` trains what is not finished, resumes what was interrupted (from its
workdir's last checkpoint, under ``--workroot``), scores each finished run and
writes one small JSON per run to ``results/<study>/<run>.json`` (config,
effective hyperparameters, seed, steps, wall time, machine, final ELBO and its
terms, KL per latent, every score with its sample sizes, and the learning
curve of the periodic evaluations). A run that fails or diverges is recorded
with ``"status": "failed"`` and its error, and the study goes on (``--retry``
trains failed runs again: useful after a transient error; a diverged run,
resumed from its last good checkpoint with the same keys, diverges again, so
change the study instead). A run stopped by SIGTERM or SIGINT is not a
failure: its steps are checkpointed, no record is written, and the study
stops with the signal's exit code (143, 130); ``run`` resumes it. A finished
run is never replaced by a failure: if
extending it to a larger budget fails, its result stays, with
``extension_failed``. Several processes may work on one study at once: a
run whose workdir another process holds is skipped.

The results files are what a study is: commit them as they land. Workdirs
(checkpoints) stay on the machine that trained them. To carry an unfinished
run to another machine (a sitting that ends before the run does), ``park``
packs its newest checkpoint, config and metrics rows into
``results/<study>/parked/<run>.tar.gz`` (``vae.checkpoint.pack``: 8 MB for
the study's conv networks with Adam's moments, 64 MB for FactorVAE, whose
6 x 1000 discriminator has 5M parameters); commit it, and ``run``
on the other machine resumes the run from it (or ``unpark`` puts it into the
workroot first, for a runner at an older commit) and deletes the archive once
the run has finished. A run that was neither finished nor parked starts
again from step 0 on another machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

from absl import flags, logging

from vae import allocator
from vae import compile_cache
from vae import workdir as workdir_lib

from . import cli
from . import studies as studies_lib
from .machine import machine

_WORKROOT = flags.DEFINE_string("workroot", "workdirs/studies",
                                "Folder of the runs' workdirs (<workroot>/<study>/<run>).")
_RESULTS = flags.DEFINE_string("results", "results", "Folder of the results files "
                               "(<results>/<study>/<run>.json).")
_DOCS = flags.DEFINE_string("docs", "docs", "Folder the report writes its figures to.")
_WORKERS = flags.DEFINE_integer("workers", 1, "run: processes working on the study at "
                                "once, each pinned to its own CPU (2 single-core runs train "
                                "faster than one on 2 cores).")
_CPU = flags.DEFINE_integer("cpu", -1, "run: pin this process to one CPU (-1: do not pin).")
_RETRY = flags.DEFINE_bool("retry", False, "run: train failed runs again.")
_ONLY = flags.DEFINE_list("only", [], "run: only these runs (names as in `status`).")

FINISHED, FAILED = "finished", "failed"


def result_path(results_root: str, study: str, run: str) -> str:
  return os.path.join(results_root, study, run + ".json")


def parked_path(results_root: str, study: str, run: str) -> str:
  """Where ``park`` puts a run's packed checkpoint."""
  return os.path.join(results_root, study, "parked", run + ".tar.gz")


def read_result(path: str) -> dict[str, Any] | None:
  """The results file at ``path``, or None if there is none."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def run_config(study: studies_lib.Study, run: studies_lib.StudyRun):
  """The full config of one run: its published config, the study's settings,
  the run's hyperparameters and seed, the study's budget."""
  from . import sweep
  config = sweep.load_config_module(run.config).get_config()
  overrides = {**study.settings, **run.overrides, "seed": int(run.seed),
               "num_steps": int(study.num_steps)}
  return sweep.apply_overrides(config, overrides)


def read_metrics(workdir: str) -> list[dict[str, Any]]:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  return workdir_lib.read_jsonl(path)


def train_seconds(rows: list[dict[str, Any]]) -> float:
  """Seconds spent training, over every resumption: each train row covers
  the steps since the previous one at its logged rate."""
  total, last = 0.0, 0
  for r in rows:
    if r.get("split") == "train":
      if r.get("steps_per_sec"):
        total += (int(r["step"]) - last) / float(r["steps_per_sec"])
      last = int(r["step"])
  return total


# Fields of a periodic evaluation kept in the learning curve.
CURVE_FIELDS = ("elbo", "log_likelihood", "kl", "active_units", "kl_per_dim")


def curve(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """The periodic evaluations of a run: step, ELBO terms, KL per latent and
  the scores (without classifier matrices)."""
  out = []
  for r in rows:
    if r.get("split") != "eval":
      continue
    point = {"step": int(r["step"]), **{k: r[k] for k in CURVE_FIELDS if k in r}}
    if "disentanglement" in r:
      point["scores"] = {m: _small(s) for m, s in r["disentanglement"].items()}
    out.append(point)
  return out


def _small(score: dict[str, Any]) -> dict[str, Any]:
  """A score's dict without its large matrices (SAP's score matrix)."""
  return {k: v for k, v in score.items() if k not in ("score_matrix",)}


def _jsonable(x):
  """``x`` as it reads back from a results file (tuples become lists)."""
  return json.loads(json.dumps(x))


def build_record(study, run, config, workdir: str, status: str, *, results=None,
                 error: BaseException | None = None, wall: float = 0.0) -> dict[str, Any]:
  """The results file of one run (see the module docstring)."""
  rows = read_metrics(workdir)
  stored = {}
  if os.path.exists(os.path.join(workdir, "config.json")):
    with open(os.path.join(workdir, "config.json")) as f:
      stored = json.load(f)
  steps = max([int(r["step"]) for r in rows if r.get("split") == "train"], default=0)
  record: dict[str, Any] = {
      "study": study.name, "run": run.name, "method": run.method, "status": status,
      "seed": int(run.seed), "budget": int(study.num_steps), "steps": steps,
      "config_name": run.config, "overrides": _jsonable(run.overrides), "source": run.source,
      "effective": stored.get("effective"),
      "config": None if config is None else json.loads(config.to_json_best_effort()),
      "train_seconds": train_seconds(rows), "wall_seconds_this_process": wall,
      "machine": machine(),
      "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
      "curve": curve(rows),
  }
  if results is not None:
    elbo = results.get("elbo", {})
    record.update({
        "elbo": elbo.get("elbo"), "log_likelihood": elbo.get("log_likelihood"),
        "kl": elbo.get("kl"), "kl_per_dim": elbo.get("kl_per_dim"),
        "iwae": results.get("iwae"), "active_units": (results.get("active_units") or {}).get(
            "active_units"),
        "eval_examples": results.get("num_examples"),
        "scores": {m: _small(s) for m, s in (results.get("disentanglement") or {}).items()},
    })
    record["scoring_seconds"] = sum(s.get("seconds") or 0.0 for s in record["scores"].values())
  if error is not None:
    record["error"] = {"type": type(error).__name__, "message": str(error),
                       "traceback": traceback.format_exception(error)[-6:]}
  return record


def run_study(study: studies_lib.Study, workroot: str, results_root: str, *,
              retry: bool = False, only=(), progress: bool = False,
              log: Callable[[str], None] = print,
              stop_after: int | None = None) -> list[dict[str, Any]]:
  """Trains, scores and records every unfinished run of ``study``.

  Args:
    study: the study.
    workroot: runs train in ``<workroot>/<study>/<run>`` (resumed if there).
    results_root: results files go to ``<results_root>/<study>/<run>.json``.
    retry: train runs recorded as failed again.
    only: run names to restrict to (empty: all).
    progress: training and scoring bars.
    log: one line per run.
    stop_after: return after this many runs were trained (tests).

  Returns:
    The records written by this call.
  """
  from vae import workdir as workdir_lib
  os.makedirs(os.path.join(results_root, study.name), exist_ok=True)
  written = []
  for i, run in enumerate(study.runs):
    if only and run.name not in only:
      continue
    tag = f"[{study.name} {i + 1}/{len(study.runs)}] {run.name}"
    path = result_path(results_root, study.name, run.name)
    previous = read_result(path)
    if _done(previous, study, retry):
      _drop_served_archive(results_root, study, run, previous, log)
      continue
    if previous is not None and previous.get("overrides") != _jsonable(run.overrides):
      log(f"{tag}: {path} was trained with other hyperparameters "
          f"({previous.get('overrides')}); remove it and its workdir to train this run")
      continue
    workdir = os.path.join(workroot, study.name, run.name)
    try:
      record = _train_run(study, run, workdir, results_root, retry, progress,
                          lambda m, tag=tag: log(f"{tag}: {m}"))
    except workdir_lib.WorkdirLockedError:
      # With --workers, this is how the workers share the runs, not an error.
      log(f"{tag}: in progress in another process (another worker, or a run "
          f"started by hand); skipped here")
      continue
    if record is None:
      continue
    written.append(record)
    log(f"{tag}: {_outcome(record, study)}")
    if stop_after is not None and len(written) >= stop_after:
      break
  return written


def _train_run(study, run, workdir: str, results_root: str, retry: bool, progress: bool,
               log):
  """Trains and scores one run under its workdir's lock (resuming from its
  parked checkpoint if it has one and the workdir nothing newer) and writes
  its record; None when another process finished it meanwhile."""
  path = result_path(results_root, study.name, run.name)
  parked = parked_path(results_root, study.name, run.name)
  from . import job as job_lib
  from vae import interrupt
  from vae import workdir as workdir_lib
  t0 = time.perf_counter()
  with workdir_lib.lock(workdir):
    previous = read_result(path)
    if _done(previous, study, retry):       # finished by another process meanwhile
      return None
    config = None
    try:
      resumed = _unpark(parked, workdir)
      if resumed is not None:
        log(f"unpacked its parked checkpoint (step {resumed})")
      log(f"training to {study.num_steps} steps in {workdir}")
      config = run_config(study, run)
      results = job_lib.train_and_evaluate(config, workdir, progress=progress)
      status, error = FINISHED, None
    except (KeyboardInterrupt, interrupt.Interrupted, workdir_lib.WorkdirLockedError):
      raise            # a stop (SIGTERM, SIGINT) is not a failure: no record, resumed next time
    except Exception as e:       # recorded; the study goes on
      results, status, error = None, FAILED, e
      if isinstance(e, job_lib.NonFiniteEvaluationError):
        results = _read_eval(workdir, config)
    record = build_record(study, run, config, workdir, status, results=results,
                          error=error, wall=time.perf_counter() - t0)
    if status == FAILED and previous is not None and previous.get("status") == FINISHED:
      # Extending a finished run failed (e.g. a budget change that alters its
      # config): its finished result stays; the failure is noted beside it.
      previous["extension_failed"] = {"budget": study.num_steps, **record["error"]}
      record = previous
    workdir_lib.write_json(path, record, indent=1)
    if record is not previous:
      _drop_served_archive(results_root, study, run, record, log)
  return record


def _finished(record, study) -> bool:
  return (record is not None and record.get("status") == FINISHED
          and int(record.get("steps", 0)) >= study.num_steps)


def _drop_served_archive(results_root, study, run, record, log) -> None:
  """Deletes a run's parked archive once its run has finished at the budget
  (wherever it finished: here, or by a runner that was given it by
  ``unpark``)."""
  archive = parked_path(results_root, study.name, run.name)
  if _finished(record, study) and os.path.exists(archive):
    os.remove(archive)
    log(f"{run.name}: finished, so its parked archive {archive} was deleted")


def _unpark(archive: str, workdir: str) -> int | None:
  """Unpacks a parked run into ``workdir`` unless that has a checkpoint as
  new; the step unpacked, or None."""
  from vae import checkpoint
  return checkpoint.unpack(archive, workdir) if os.path.exists(archive) else None


def park(study: studies_lib.Study, workroot: str, results_root: str,
         log: Callable[[str], None] = print) -> dict[str, int]:
  """Packs the newest checkpoint of every unfinished run of ``study`` that
  has one under ``workroot`` into ``results/<study>/parked/<run>.tar.gz``
  (safe while the runs train); {run name: step packed}."""
  from vae import checkpoint
  out = {}
  for run in study.runs:
    record = read_result(result_path(results_root, study.name, run.name))
    if _done(record, study, False):
      _drop_served_archive(results_root, study, run, record, log)
      continue
    workdir = os.path.join(workroot, study.name, run.name)
    latest = checkpoint.latest_step(workdir)
    if latest is None:
      continue
    archive = parked_path(results_root, study.name, run.name)
    if os.path.exists(archive) and checkpoint.packed_step(archive) >= latest:
      continue           # parked already at this step (or a later one, from elsewhere)
    out[run.name] = checkpoint.pack(workdir, archive)
    log(f"{run.name}: parked at step {out[run.name]} in {archive} "
        f"({os.path.getsize(archive) / 2**20:.1f} MiB)")
  return out


def unpark(study: studies_lib.Study, workroot: str, results_root: str,
           log: Callable[[str], None] = print) -> dict[str, int]:
  """Unpacks every parked run of ``study`` into ``workroot`` where that has
  no checkpoint as new (under each workdir's lock: a run that a process is
  training is left alone); {run name: step unpacked}."""
  out = {}
  for run in study.runs:
    archive = parked_path(results_root, study.name, run.name)
    if not os.path.exists(archive):
      continue
    workdir = os.path.join(workroot, study.name, run.name)
    try:
      with workdir_lib.lock(workdir):
        step = _unpark(archive, workdir)
    except workdir_lib.WorkdirLockedError as e:
      log(f"{run.name}: not unpacked: {e}")
      continue
    if step is not None:
      out[run.name] = step
      log(f"{run.name}: unpacked at step {step}")
  return out


def _outcome(record: dict, study) -> str:
  """One line: how a run ended."""
  if record.get("extension_failed"):
    e = record["extension_failed"]
    return (f"extending to {study.num_steps} steps failed ({e['type']}: "
            f"{e['message'][:300]}); the finished result at {record['steps']} steps is kept")
  if record["status"] == FINISHED:
    from vae import metrics as metrics_lib
    head = {m: (None if v is None else round(v, 3))
            for m, v in metrics_lib.headlines(record.get("scores", {})).items()}
    return (f"finished at step {record['steps']} "
            f"({record['train_seconds'] / 60:.1f} min training) scores {head}")
  return (f"failed at step {record['steps']}: {record['error']['type']}: "
          f"{record['error']['message'][:300]}")


def _read_eval(workdir, config):
  if config is None:
    return None
  path = os.path.join(workdir, f"eval_{config.eval.split}.json")
  return read_result(path)


def _done(record, study, retry: bool) -> bool:
  if record is None:
    return False
  if record.get("status") == FAILED:
    return not retry
  return _finished(record, study)


def status(study: studies_lib.Study, results_root: str) -> list[tuple[str, str]]:
  """(run name, "finished at N steps" | "failed: ..." | "to do") for every run."""
  out = []
  for run in study.runs:
    rec = read_result(result_path(results_root, study.name, run.name))
    archive = parked_path(results_root, study.name, run.name)
    if not _done(rec, study, False) and os.path.exists(archive):
      from vae import checkpoint
      try:
        out.append((run.name, f"parked at step {checkpoint.packed_step(archive)}"))
      except checkpoint.CheckpointError as e:
        out.append((run.name, f"parked, but the archive is unusable: {e}"))
    elif rec is None:
      out.append((run.name, "to do"))
    elif rec.get("overrides") != _jsonable(run.overrides):
      out.append((run.name, f"stale: trained with {rec.get('overrides')}"))
    elif rec["status"] == FAILED:
      out.append((run.name, f"failed at step {rec['steps']}: {rec['error']['type']}"))
    else:
      out.append((run.name, f"finished at {rec['steps']} steps"
                  + ("" if rec["steps"] >= study.num_steps else
                     f" (budget now {study.num_steps}: to do)")
                  + (" (its parked archive is left over: `run` or `park` deletes it)"
                     if _finished(rec, study) and os.path.exists(archive) else "")))
  return out


def _spawn_workers(argv_rest: list[str], n: int) -> int:
  """``n`` copies of this command, each pinned to one CPU; their exit code."""
  cpus = sorted(os.sched_getaffinity(0))
  procs = []
  for w in range(n):
    cmd = [sys.executable, "-m", __spec__.name if __spec__ else "experiments.study",
           *argv_rest, "--workers=1", f"--cpu={cpus[w % len(cpus)]}"]
    procs.append(subprocess.Popen(cmd))
  codes = [p.wait() for p in procs]
  # A worker killed by a signal has a negative code: report it, not 0.
  return next((c if c > 0 else 128 - c for c in codes if c != 0), 0)


def main(argv):
  allocator.tune()   # the malloc settings XLA:CPU needs (vae/allocator.py)
  compile_cache.enable()   # programs compiled once are read back (vae/compile_cache.py)
  logging.set_verbosity(logging.WARNING)
  if len(argv) != 3 or argv[1] not in ("run", "status", "report", "gifs", "park", "unpark"):
    cli.usage_error("usage: vae-study run|status|report|gifs|park|unpark <study>; studies: "
                    f"{sorted(studies_lib.REGISTRY)}")
  command, name = argv[1], argv[2]
  try:
    study = studies_lib.get(name)
  except ValueError as e:
    cli.usage_error(str(e))
  if command == "status":
    for run, what in status(study, _RESULTS.value):
      print(f"{run:32s} {what}")
    return
  if command in ("park", "unpark"):
    (park if command == "park" else unpark)(study, _WORKROOT.value, _RESULTS.value)
    return
  if command == "report":
    from . import study_report
    print(study_report.report(study, _RESULTS.value, _DOCS.value))
    return
  if command == "gifs":
    from . import study_report
    study_report.traversal_gifs(study, _RESULTS.value, _WORKROOT.value, _DOCS.value)
    return
  if _WORKERS.value > 1:
    rest, skip = [], False
    for a in sys.argv[1:]:
      if skip:
        skip = False
      elif a in ("--workers", "--cpu"):
        skip = True                  # its value follows
      elif not a.startswith(("--workers=", "--cpu=")):
        rest.append(a)
    sys.exit(_spawn_workers(rest, _WORKERS.value))
  if _CPU.value >= 0:
    os.sched_setaffinity(0, {_CPU.value})     # before JAX starts its threads
  # As vae-train: SIGTERM/SIGINT end the study with the signal's exit code
  # (its run checkpointed; `run` again resumes it), in scoring too.
  from .exits import exit_on_known_failure
  exit_on_known_failure(run_study, study, _WORKROOT.value, _RESULTS.value,
                        retry=_RETRY.value, only=_ONLY.value)


def run():
  """The ``vae-study`` console script."""
  cli.run(main, doc=__doc__, module=__name__)


if __name__ == "__main__":
  run()
