"""Data parallelism on forced host devices (subprocesses) and two processes."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, devices, timeout=600, env_extra=None, wait=True):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  env.update(env_extra or {})
  cmd = [sys.executable, "-m", "tests.parallel_worker"] + [str(a) for a in args]
  if not wait:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
  out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout


def _params(path):
  with np.load(path) as f:
    return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


@pytest.mark.slow
def test_sharded_step_equals_single_device_step(tmp_path):
  out = tmp_path / "r.json"
  _run(["sharded_vs_single", out], devices=4)
  r = json.load(open(out))
  assert r["all"]["devices"] == 4 and r["one"]["devices"] == 1
  assert r["all"]["param_devices"] == 4          # replicated on every device
  assert r["all"]["all_reduce"]                  # gradients reduced across devices
  np.testing.assert_allclose(r["all"]["loss"], r["one"]["loss"], rtol=1e-5)
  for a, b in zip(r["all"]["params"], r["one"]["params"]):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)


@pytest.mark.slow   # ~19 s on 2 cores; runs in .ci/run after the fast suite
def test_four_device_run_resumes_on_one_device(tmp_path, npz_dir):
  wd = tmp_path / "run"
  first = json.loads(_run(["train", wd, 100, npz_dir, tmp_path / "a.npz"], devices=4).strip().splitlines()[-1])
  assert (first["step"], first["devices"], first["process"]) == (100, 4, 0)
  second = json.loads(_run(["train", wd, 200, npz_dir, tmp_path / "b.npz"], devices=1).strip().splitlines()[-1])
  assert second["step"] == 200 and second["devices"] == 1
  ref = json.loads(_run(["train", tmp_path / "ref", 200, npz_dir, tmp_path / "ref.npz"],
                        devices=4).strip().splitlines()[-1])
  for a, b in zip(_params(tmp_path / "b.npz"), _params(tmp_path / "ref.npz")):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
  # Sharded evaluation (4 devices) agrees with one-device evaluation.
  for k in ("elbo", "iwae"):
    assert ref[k] == pytest.approx(second[k], abs=0.05)


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow   # ~11 s on 2 cores; runs in .ci/run after the fast suite
def test_two_processes_train_to_identical_parameters(tmp_path, npz_dir):
  coord = f"127.0.0.1:{_free_port()}"
  wd = tmp_path / "dist"
  procs = [_run(["train", wd, 60, npz_dir, tmp_path / f"p{i}.npz", coord, i, 2], devices=2, wait=False)
           for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (so, se) in zip(procs, outs):
    assert p.returncode == 0, se[-3000:]
  infos = [json.loads(so.strip().splitlines()[-1]) for so, _ in outs]
  assert sorted(i["process"] for i in infos) == [0, 1]
  assert all(i["devices"] == 4 and i["step"] == 60 for i in infos)
  for a, b in zip(_params(tmp_path / "p0.npz"), _params(tmp_path / "p1.npz")):
    np.testing.assert_array_equal(a, b)
  assert infos[0]["iwae"] == infos[1]["iwae"] and infos[0]["elbo"] == infos[1]["elbo"]
