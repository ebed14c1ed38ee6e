"""Bad input raises a clear error before anything is traced (docs/design.md, contract 7)."""

import numpy as np
import pytest

from vae import checks
from vae import train as train_lib
from experiments import job as job_lib


@pytest.fixture
def no_tracing(monkeypatch):
  """Fails the test if training gets as far as building the compiled loop."""
  def boom(*a, **k):
    raise AssertionError("reached tracing: the bad input was not caught at the edge")
  monkeypatch.setattr(train_lib, "make_scan_loop", boom)
  monkeypatch.setattr(train_lib, "make_train_step", boom)


def _data(n=100):
  return (np.random.default_rng(0).random((n, 28, 28, 1)) > 0.5).astype(np.float32)


@pytest.mark.parametrize("data,match", [
    (np.zeros((10, 28, 28), np.float32),
     r"model.data_shape is \(28, 28, 1\) but the training data holds examples of shape \(28, 28\)"),
    (np.zeros((10, 32, 32, 1), np.float32), r"examples of shape \(32, 32, 1\)"),
    (np.full((10, 28, 28, 1), 0.5, np.float32), r"must be binary \(0 or 1\) under likelihood='bernoulli'"),
    (np.where(np.arange(10 * 784).reshape(10, 28, 28, 1) == 17, np.nan, 0.0).astype(np.float32),
     r"contains NaN or inf .*first at index \(0, 0, 17, 0\)"),
])
def test_bad_data_raises_before_tracing(data, match, smoke_config, tmp_path, no_tracing):
  with pytest.raises(ValueError, match=match):
    job_lib.train(smoke_config, str(tmp_path), data, progress=False)


@pytest.mark.parametrize("field,value,match", [
    ("hparams.vae.beta", -1.0, "beta must be >= 0, got -1.0"),
    ("model.latent_dim", 0, "model.latent_dim must be a positive integer, got 0"),
    ("eval.num_importance_samples", 0, r"num_importance_samples \(k\) must be an integer >= 1, got 0"),
    ("batch_size", 0, "batch_size must be >= 1, got 0"),
    ("optim.learning_rate", -1e-3, "learning_rate must be > 0"),
    ("checkpoint_every", 70, "checkpoint_every must be a positive multiple of log_every"),
    # These must not be silent no-ops (no periodic evaluation at all; metrics
    # quietly not scored).
    ("eval_every", 70, r"eval_every must be a multiple of log_every \(50\) or 0, got 70"),
    ("eval.metrics", ("mig",), "eval.metrics .* need a data set with known generative factors"),
    ("objective", "gan", "objective must be one of"),
])
def test_bad_config_raises_before_tracing(field, value, match, smoke_config, tmp_path, no_tracing):
  cfg = smoke_config
  *path, name = field.split(".")
  parent = cfg
  for part in path:
    parent = parent[part]
  parent[name] = value
  with pytest.raises(ValueError, match=match):
    job_lib.train(cfg, str(tmp_path), _data(), progress=False)


def test_iwae_k_below_one_raises(smoke_config, tmp_path, no_tracing):
  smoke_config.objective = "iwae"
  smoke_config.hparams.iwae.num_samples = 0
  with pytest.raises(ValueError, match=r"num_samples \(k\) must be an integer >= 1, got 0"):
    job_lib.train(smoke_config, str(tmp_path), _data(), progress=False)


def test_batch_larger_than_data_raises(smoke_config, tmp_path):
  smoke_config.batch_size = 1000
  with pytest.raises(ValueError, match=r"batch_size must be in \[1, 100\]"):
    job_lib.train(smoke_config, str(tmp_path), _data(100), progress=False)


def test_check_data_accepts_good_data_and_rejects_strings():
  checks.check_data(_data(), data_shape=(28, 28, 1), likelihood="bernoulli")
  checks.check_data(np.random.default_rng(0).normal(size=(4, 3)), data_shape=(3,),
                    likelihood="gaussian")
  with pytest.raises(TypeError, match="must be numeric"):
    checks.check_data(np.array([["a"]]))
