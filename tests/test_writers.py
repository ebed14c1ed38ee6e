"""Experiment tracking: the same rows in metrics.jsonl and TensorBoard event
files, read back with TensorBoard's own reader; plug-in writers."""

import json
import os
import shutil

import numpy as np
import pytest

from experiments import job as job_lib
from vae import checkpoint as ckpt_lib
from vae import writers as writers_lib


def _events(logdir):
  acc_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
  acc = acc_mod.EventAccumulator(logdir, size_guidance={"scalars": 0, "images": 0})
  acc.Reload()
  return acc


class Collect:
  """A user's writer: keeps what it is sent."""

  def __init__(self):
    self.scalars, self.images, self.resumed = [], [], []

  def resume(self, step):
    self.resumed.append(step)

  def write_scalars(self, step, split, scalars):
    self.scalars.append((step, split, dict(scalars)))

  def write_images(self, step, images):
    self.images.append((step, sorted(images)))

  def close(self):
    pass


def test_tensorboard_holds_the_jsonl_rows_the_final_evaluation_and_the_figures(
    smoke_config, tmp_path):
  wd = str(tmp_path / "run")
  mine = Collect()
  res = job_lib.train_and_evaluate(smoke_config, wd, writers=[mine])
  acc = _events(os.path.join(wd, "tensorboard"))
  tags = acc.Tags()
  rows = [json.loads(l) for l in open(os.path.join(wd, "metrics.jsonl"))]
  # Every number of every metrics.jsonl row is a scalar at its step, with its value.
  for row in rows:
    flat = writers_lib.flatten({k: v for k, v in row.items() if k not in ("step", "split")},
                               row["split"] + "/")
    for tag, value in flat.items():
      events = {e.step: e.value for e in acc.Scalars(tag)}
      np.testing.assert_allclose(events[row["step"]], value, rtol=1e-6, err_msg=tag)
  assert [e.step for e in acc.Scalars("train/loss")] == [50, 100, 150, 200]
  assert [e.step for e in acc.Scalars("eval/elbo")] == [100, 200]
  assert "eval/kl_per_dim/7" in tags["scalars"] and "train/grad_norm" in tags["scalars"]
  # The final evaluation under final/, at the last step.
  final = acc.Scalars("final/iwae/nll")
  assert [e.step for e in final] == [200]
  np.testing.assert_allclose(final[0].value, res["iwae"]["nll"], rtol=1e-6)
  assert "final/active_units/active_units" in tags["scalars"]
  assert sorted(tags["images"]) == ["prior_samples", "reconstructions", "traversals"]
  img = acc.Images("traversals")[0]
  assert img.step == 200 and img.width > 100 and img.height > 100
  # A plug-in writer gets the same calls.
  assert mine.resumed == [0]
  assert [(s, sp) for s, sp, _ in mine.scalars if sp == "train"] == [
      (50, "train"), (100, "train"), (150, "train"), (200, "train")]
  assert any(sp == "final" and "iwae" in sc for _, sp, sc in mine.scalars)
  assert mine.images == [(200, ["prior_samples", "reconstructions", "traversals"])]


@pytest.mark.slow   # two runs
def test_a_resumed_run_shows_each_step_once_in_tensorboard(smoke_config, tmp_path):
  smoke_config.eval_every = 0
  wd = str(tmp_path / "run")
  job_lib.train_and_evaluate(smoke_config, wd)
  first = {e.step: e.value for e in _events(os.path.join(wd, "tensorboard")).Scalars("train/loss")}
  # Killed after logging steps 150 and 200 but before checkpoint 200 was complete.
  shutil.rmtree(ckpt_lib.step_dir(wd, 200))
  job_lib.train_and_evaluate(smoke_config, wd)
  again = _events(os.path.join(wd, "tensorboard")).Scalars("train/loss")
  assert [e.step for e in again] == [50, 100, 150, 200]
  assert {e.step: e.value for e in again} == first     # resumed bit-identically


def test_tensorboard_can_be_turned_off(smoke_config, tmp_path):
  smoke_config.tensorboard = False
  smoke_config.num_steps = 50
  job_lib.train_and_evaluate(smoke_config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run" / "tensorboard")


def test_flatten_keeps_numbers_only():
  flat = writers_lib.flatten({"a": {"b": 1, "c": [2.0, 3.0]}, "s": "text", "t": True,
                              "long": list(range(100))})
  assert flat == {"a/b": 1.0, "a/c/0": 2.0, "a/c/1": 3.0}
