"""The study runner (experiments/study.py) and its report: a 2-run study
trained to a few steps end to end, stopped in the middle and resumed; a
failed run is recorded and the study goes on; the report's numbers are the
results files' numbers; scores as learning curves."""

import json
import os

import pytest

from experiments import job as job_lib
from experiments import studies
from experiments import study
from experiments import study_report

# Small and fast: the MLP on procedural dSprites, a few steps, small metric samples.
SETTINGS = {"model.architecture": "mlp", "model.encoder_hidden": (32,),
            "model.decoder_hidden": (32,), "model.activation": "relu", "log_every": 4,
            "checkpoint_every": 4, "eval_every": 4, "eval.score_every": 8,
            "eval.score_metrics": ("mig",), "eval.metrics": ("mig",),
            "eval.metric_scale": 0.02, "eval.max_examples": 64,
            "eval.num_importance_samples": 2, "eval.diagnostics_batch_size": 32,
            "eval.elbo_batch_size": 32}


def _study(runs, num_steps=8):
  return studies.Study(name="tiny", description="A test study.", num_steps=num_steps,
                       runs=tuple(runs), settings=SETTINGS)


VAE = studies.StudyRun("VAE", "dsprites_study", {"hparams.vae.beta": 1.0}, 0, "baseline")
TCVAE = studies.StudyRun("beta-TCVAE", "beta_tcvae_dsprites", {"hparams.beta_tcvae.beta": 6.0},
                         1, "Chen et al. 2018")


BROKEN = studies.StudyRun("broken", "beta_vae_dsprites", {"hparams.beta_vae.beta": -1.0}, 0)


# The fast test is the 2-run study: a failed run and a VAE stopped in
# the middle and resumed. With beta-TCVAE as a third run (another objective,
# trained without a stop) it is slow: 26 s after the 2-run form, beside a
# training run.
@pytest.mark.parametrize("runs", [(BROKEN, VAE),
                                  pytest.param((BROKEN, VAE, TCVAE), marks=pytest.mark.slow)],
                         ids=["two_runs", "three_runs"])
def test_study_stops_resumes_records_failures_and_reports_its_results_files(tmp_path, runs):
  s = _study(runs)
  finished = [r for r in runs if r is not BROKEN]
  work, results, docs = (str(tmp_path / d) for d in ("work", "results", "docs"))
  logs = []
  # Stopped in the middle of a run: 4 of VAE's 8 steps trained.
  half = study.run_config(s, VAE)
  half.num_steps = 4
  job_lib.train(half, os.path.join(work, "tiny", VAE.name), progress=False)
  assert [w for _, w in study.status(s, results)] == ["to do"] * len(runs)
  # The broken run is recorded as failed and the study goes on: VAE resumes
  # from its checkpoint and finishes; stopped again after it.
  written = study.run_study(s, work, results, log=logs.append, stop_after=2)
  assert [(r["run"], r["status"]) for r in written] == [(BROKEN.name, "failed"),
                                                        (VAE.name, "finished")]
  assert written[0]["error"]["type"] == "InputError" and "beta" in written[0]["error"]["message"]
  assert study.status(s, results)[0][1].startswith("failed")
  assert study.status(s, results)[2:] == [(r.name, "to do") for r in runs[2:]]
  # The rest; the finished run is not trained again, the failed one not retried.
  written = study.run_study(s, work, results, log=logs.append)
  assert [r["run"] for r in written] == [r.name for r in runs[2:]]
  assert study.run_study(s, work, results, log=logs.append) == []

  recs = {r.name: json.load(open(os.path.join(results, "tiny", r.name + ".json")))
          for r in finished}
  for name, rec in recs.items():
    assert rec["status"] == "finished" and rec["steps"] == 8 and rec["budget"] == 8
    assert set(rec["scores"]) == {"mig"}
    assert rec["scores"]["mig"]["protocol"]["num_train"] == 200       # 10,000 x 0.02
    assert rec["scores"]["mig"]["images_encoded"] >= 200
    assert len(rec["kl_per_dim"]) == 10 and rec["machine"]["cpu"]
    # The curve: evaluations every 4 steps (VAE's first 4 steps were trained
    # without them), scores every 8; the last equals the final score.
    assert [p["step"] for p in rec["curve"]] == ([8] if name == VAE.name else [4, 8])
    assert "scores" not in rec["curve"][0] or rec["curve"][0]["step"] == 8
    assert rec["curve"][-1]["scores"]["mig"]["mig"] == pytest.approx(
        rec["scores"]["mig"]["mig"])
    assert rec["train_seconds"] > 0
  if TCVAE in runs:
    assert recs[TCVAE.name]["effective"]["hparams"]["beta"] == 6.0
    assert recs[TCVAE.name]["config"]["seed"] == 1
  # The resumed run's metrics rows were not repeated: one train row per log period.
  rows = study.read_metrics(os.path.join(work, "tiny", VAE.name))
  assert [r["step"] for r in rows if r["split"] == "train"] == [4, 8]

  text = study_report.report(s, results, docs)
  rows = study_report.table_rows(study_report.load(results, "tiny"), s)
  mig = {r["method"]: r for r in rows if r["quantity"] == "MIG"}
  assert {m: r["seeds"] for m, r in mig.items()} == {
      r.method: {r.seed: recs[r.name]["scores"]["mig"]["mig"]} for r in finished}
  elbo = {r["method"]: r["median"] for r in rows if r["quantity"] == "ELBO (nats)"}
  assert elbo == {r.method: recs[r.name]["elbo"] for r in finished}
  assert f"{recs[VAE.name]['scores']['mig']['mig']:.3f}" in text
  assert "broken-seed0 at step 0: InputError" in text
  for f in ("study_tiny.md", "study_tiny_scores.png", "study_tiny_curves.png"):
    assert os.path.getsize(os.path.join(docs, f)) > 0


def test_a_stopped_run_is_not_recorded_as_failed_and_the_study_stops(tmp_path, monkeypatch):
  # SIGTERM/SIGINT reach a run as vae.interrupt.Interrupted once its steps are
  # checkpointed: the study stops there, writes no record (a failed one would
  # not be retried) and starts no other run.
  from vae import interrupt
  started = []
  def stopped(config, workdir, **kw):
    started.append(workdir)
    raise interrupt.Interrupted(15, "stopped by SIGTERM at step 4 of 8")
  monkeypatch.setattr(job_lib, "train_and_evaluate", stopped)
  s, results = _study([VAE, BROKEN]), str(tmp_path / "results")
  with pytest.raises(interrupt.Interrupted):
    study.run_study(s, str(tmp_path / "work"), results, log=lambda m: None)
  assert len(started) == 1
  assert study.status(s, results) == [(VAE.name, "to do"), (BROKEN.name, "to do")]


def test_a_parked_run_resumes_on_another_machine_and_ends_as_an_uninterrupted_one(tmp_path):
  import jax
  import numpy as np
  from vae import checkpoint
  s = _study([VAE])
  results, logs = str(tmp_path / "results"), []
  # Machine A trains 4 of the 8 steps, then parks the run (as a sitting ends).
  half = study.run_config(s, VAE)
  half.num_steps = 4
  job_lib.train(half, str(tmp_path / "a" / "tiny" / VAE.name), progress=False)
  assert study.park(s, str(tmp_path / "a"), results, log=logs.append) == {VAE.name: 4}
  assert study.park(s, str(tmp_path / "a"), results, log=logs.append) == {}   # parked already
  archive = study.parked_path(results, "tiny", VAE.name)
  assert study.status(s, results) == [(VAE.name, "parked at step 4")]
  # Machine B has no workdir: the run resumes from the archive at step 4 and
  # finishes; the archive, having served, is deleted.
  [rec] = study.run_study(s, str(tmp_path / "b"), results, log=logs.append)
  assert rec["status"] == "finished" and rec["steps"] == 8
  assert any("unpacked its parked checkpoint (step 4)" in m for m in logs)
  assert not os.path.exists(archive)
  rows = study.read_metrics(str(tmp_path / "b" / "tiny" / VAE.name))
  assert [r["step"] for r in rows if r["split"] == "train"] == [4, 8]
  # Its first rows are machine A's (their timings too): carried, not retrained.
  assert rows[0] == study.read_metrics(str(tmp_path / "a" / "tiny" / VAE.name))[0]
  # The same run uninterrupted, on one machine: the same parameters and losses.
  state = job_lib.train(study.run_config(s, VAE), str(tmp_path / "c"), progress=False)
  resumed = checkpoint.restore(str(tmp_path / "b" / "tiny" / VAE.name), state, step=8)
  for a, b in zip(jax.tree.leaves(resumed.params), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  uninterrupted = study.read_metrics(str(tmp_path / "c"))
  assert ([r["elbo"] for r in rows if r["split"] == "train"]
          == [r["elbo"] for r in uninterrupted if r["split"] == "train"])
  # A workdir with a newer checkpoint than the archive is left alone.
  assert checkpoint.pack(str(tmp_path / "a" / "tiny" / VAE.name), archive) == 4
  assert checkpoint.unpack(archive, str(tmp_path / "c")) is None
  assert checkpoint.latest_step(str(tmp_path / "c")) == 8
  # That archive, left beside a finished run (one finished by a runner that
  # was given it by `unpark`), is reported and deleted by the next `park`.
  assert "left over" in study.status(s, results)[0][1]
  assert study.park(s, str(tmp_path / "a"), results, log=logs.append) == {}
  assert not os.path.exists(archive)


def test_unpack_refuses_archives_that_pack_did_not_write(tmp_path):
  import io
  import tarfile
  from vae import checkpoint

  def archive(name, members):
    path = str(tmp_path / name)
    with tarfile.open(path, "w:gz") as tar:
      for member in members:
        info = tarfile.TarInfo(member)
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    return path

  escaping = archive("escaping.tar.gz", ["checkpoints/4/x", "../outside"])
  with pytest.raises(checkpoint.CheckpointError, match="'../outside'.*not a plain file"):
    checkpoint.unpack(escaping, str(tmp_path / "work"))
  assert not (tmp_path / "outside").exists()
  two = archive("two.tar.gz", ["checkpoints/4/x", "checkpoints/8/x"])
  with pytest.raises(checkpoint.CheckpointError, match=r"holds checkpoints \[4, 8\], not one"):
    checkpoint.unpack(two, str(tmp_path / "work"))


def test_pack_passes_over_a_damaged_checkpoint_and_a_bad_archive_fails_only_its_run(tmp_path):
  import numpy as np
  from vae import checkpoint
  work = str(tmp_path / "w")
  values = {step: np.random.default_rng(step).normal(size=(64, 64)).astype(np.float32)
            for step in (1, 2)}
  for step in (1, 2):
    checkpoint.save(work, step, {"w": values[step]})
  data = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(
      checkpoint.step_dir(work, 2), "default")) for f in fs if "/d/" in os.path.join(r, f)]
  victim = max(data, key=os.path.getsize)
  with open(victim, "r+b") as f:
    f.truncate(os.path.getsize(victim) // 2)
  archive = str(tmp_path / "parked" / "r.tar.gz")
  with pytest.warns(checkpoint.CheckpointFallbackWarning, match="step 2 cannot be restored"):
    assert checkpoint.pack(work, archive) == 1
  assert os.listdir(tmp_path / "parked") == ["r.tar.gz"]     # no temporary file left
  assert checkpoint.unpack(archive, str(tmp_path / "fresh")) == 1
  restored = checkpoint.restore(str(tmp_path / "fresh"), {"w": np.zeros((64, 64), np.float32)})
  np.testing.assert_array_equal(np.asarray(restored["w"]), values[1])

  # An archive that cannot be read fails its run, recorded; the study goes on.
  s = _study([VAE])
  results = str(tmp_path / "results")
  bad = study.parked_path(results, "tiny", VAE.name)
  os.makedirs(os.path.dirname(bad))
  with open(bad, "wb") as f:
    f.write(b"not a tar file")
  assert study.status(s, results)[0][1].startswith("parked, but the archive is unusable")
  [rec] = study.run_study(s, str(tmp_path / "work"), results, log=[].append)
  assert rec["status"] == "failed" and rec["error"]["type"] == "CheckpointError"
  assert "cannot be read" in rec["error"]["message"]


def test_study_definitions():
  pilot = studies.get("pilot")
  assert pilot.num_steps == 50_000 and {r.method for r in pilot.runs} == {"beta-VAE",
                                                                          "beta-TCVAE"}
  c = study.run_config(pilot, pilot.runs[1])
  assert (c.objective, c.hparams.beta_tcvae.beta, c.num_steps) == ("beta_tcvae", 6.0, 50_000)
  assert c.eval.score_every == 5_000 and c.batch_size == 64 and c.optim.learning_rate == 1e-4
  job_lib.check_config(c)
  with pytest.raises(ValueError, match="unknown study"):
    studies.get("nope")
  with pytest.raises(ValueError, match="repeats a run"):
    _study([VAE, VAE])


def test_score_every_must_be_a_multiple_of_eval_every():
  c = study.run_config(_study([VAE]), VAE)
  c.eval.score_every = 6           # eval_every is 4
  with pytest.raises(ValueError, match="multiple of eval_every"):
    job_lib.check_config(c)
  c.eval.score_every, c.eval.score_metrics = 8, ("nope",)
  with pytest.raises(ValueError, match="score_metrics"):
    job_lib.check_config(c)


def test_latent_labels_name_the_factor_each_latent_informs_most():
  # Latent 0 carries most MI about factor 1, latent 1 about factor 0 once
  # normalised by entropy (0.5 / 1.0 beats 0.9 / 3.0).
  record = {"kl_per_dim": [2.5, 1.25],
            "scores": {"mig": {"mutual_info": [[0.1, 2.0], [0.5, 0.9]],
                               "factor_entropy": [1.0, 3.0]}}}
  labels = study_report.latent_labels(record, ("shape", "posX"))
  assert labels == {0: "z0  KL 2.50  posX (0.67)", 1: "z1  KL 1.25  shape (0.50)"}


def test_periodic_results_keep_protocol_strings():
  # A score's protocol holds strings (DCI's importance): the periodic
  # evaluation must log them as they are, numbers as floats.
  from vae import train
  got = train._plain({"dci": {"disentanglement": 0.5, "protocol": {"importance": "gbt",
                                                                    "num_train": 10}},
                      "kl_per_dim": [1, 2], "active_units": 3})
  assert got == {"dci": {"disentanglement": 0.5, "protocol": {"importance": "gbt",
                                                              "num_train": 10.0}},
                 "kl_per_dim": [1.0, 2.0], "active_units": 3.0}


def test_budget_is_where_the_scores_stay_above_90_percent():
  curve = lambda values: [{"step": 5000 * (i + 1), "scores": {"mig": {"mig": v}}}
                          for i, v in enumerate(values)]
  # Reaches 0.9 * 0.5 at 10k, falls back at 15k, stays from 20k on.
  a = {"run": "a", "status": "finished", "curve": curve([0.1, 0.46, 0.3, 0.46, 0.5, 0.5])}
  b = {"run": "b", "status": "finished", "curve": curve([0.2, 0.2, 0.2, 0.2, 0.2, 0.2])}
  assert study_report.steps_to_fraction(a, "mig") == 20_000
  assert study_report.steps_to_fraction(b, "mig") == 5_000
  assert study_report.budget([a, b], metrics=("mig",))[0] == 20_000
  late = {"run": "c", "status": "finished", "curve": curve([0.1] * 5 + [1.0])}
  assert study_report.budget([a, late], metrics=("mig",))[0] == 30_000


@pytest.mark.slow   # trains and evaluates a VAE and a VampPrior: ~25 s
def test_a_study_of_likelihoods_records_and_reports_the_iwae_without_scores(tmp_path):
  from tests.conftest import write_npz_dataset
  real = studies.get("binarized_mnist_800")
  assert real.num_steps == 400_000
  for run in real.runs:                   # every run's config resolves as the study trains it
    c = study.run_config(real, run)
    job_lib.check_config(c)
    assert (c.num_steps, c.batch_size, c.eval.num_importance_samples) == (400_000, 100, 5000)
  vamp = study.run_config(real, real.run("vamp_prior-seed0"))
  assert (vamp.model.prior, vamp.hparams.vae.warmup_steps) == ("vampprior", 50_000)
  # The VAE and the VampPrior of that study, small: a tiny MLP, 4 steps, k = 4.
  data = write_npz_dataset(tmp_path / "npz", train_n=120, valid_n=40)
  s = studies.Study(
      name="lik", description="A test study of likelihoods.", num_steps=4,
      runs=(real.run("vae-seed0"), real.run("vamp_prior-seed0")),
      settings={"data_dir": data, "model.encoder_hidden": (16,), "model.decoder_hidden": (16,),
                "model.prior_hparams.vampprior.num_components": 5, "log_every": 2,
                "checkpoint_every": 2, "eval_every": 2, "eval.max_examples": 32,
                "eval.num_importance_samples": 4, "eval.iwae_batch_size": 8,
                "eval.chunk_size": 4, "eval.elbo_batch_size": 32})
  work, results, docs = (str(tmp_path / d) for d in ("work", "results", "docs"))
  written = study.run_study(s, work, results, log=lambda m: None)
  assert [(r["run"], r["status"]) for r in written] == [("vae-seed0", "finished"),
                                                        ("vamp_prior-seed0", "finished")]
  for r in written:
    assert r["scores"] == {} and r["iwae"]["num_samples"] == 4 and r["eval_examples"] == 32
    assert r["iwae"]["log_likelihood"] >= r["elbo"] - 1.0
  text = study_report.report(s, results, docs)
  rows = study_report.table_rows(study_report.load(results, "lik"), s)
  iwae = {r["method"]: r["median"] for r in rows if r["quantity"] == "IWAE log p(x) (nats)"}
  assert iwae == {r["method"]: r["iwae"]["log_likelihood"] for r in written}
  assert not any(r["quantity"] == "scoring (s)" for r in rows)
  assert "at batch 100" in text and "IWAE: k = 4 importance samples on 32 held-out" in text
  assert f"{written[1]['iwae']['log_likelihood']:.2f}" in text
  assert not os.path.exists(os.path.join(docs, "study_lik_scores.png"))
  assert os.path.getsize(os.path.join(docs, "study_lik_curves.png")) > 0
