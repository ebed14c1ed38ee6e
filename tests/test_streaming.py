"""The streaming source (vae/data/streaming.py): the same batches as the
in-memory source, exact resumption, two processes reading their own rows,
the automatic choice, and Shapes3D-style tfds streaming (mock data)."""

import json

import jax
import numpy as np
import pytest

from tests.conftest import make_binary_images
from tests.test_parallel import _free_port, _run
from vae import model as model_lib, objectives, optim, train as train_lib
from vae.data import sources, streaming


def _model(shape=(28, 28, 1)):
  return model_lib.make_model(architecture="mlp", data_shape=shape, latent_dim=4,
                              encoder_hidden=(32,), decoder_hidden=(32,))


def test_streamed_batches_are_the_in_memory_batches_across_epochs():
  data = make_binary_images(130)
  key = jax.random.key(3)
  mem = sources.ArraySource(data, 32, key)
  src = streaming.StreamingSource(streaming.ArrayReader(data), 32, key, prefetch=2)
  want = mem.host_batches(0)
  chunk = src.host_chunk(0, 9)              # 4 steps per epoch: crosses two epochs
  for s in range(9):
    np.testing.assert_array_equal(chunk[s].astype(np.float32), next(want))
  # A chunk that is not the next one restarts the reader there.
  np.testing.assert_array_equal(src.host_chunk(2, 3), chunk[2:5])
  assert src.position(9) == (2, 32)
  src.close()


def _train(workdir, source, steps, loop="scan"):
  return train_lib.train(workdir, model=_model(), objective=objectives.get_objective("vae"),
                         optimizer=optim.make_optimizer(1e-3), source=source,
                         schedule=train_lib.Schedule(num_steps=steps, log_every=5,
                                                     checkpoint_every=5, loop=loop),
                         progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["scan", "per_step"])
def test_a_restarted_streamed_run_equals_an_uninterrupted_one(tmp_path, loop, monkeypatch):
  # Chunks of 3 steps inside each log period of 5: the feeder's sub-chunks
  # and its assembling the next chunk ahead are exercised too.
  monkeypatch.setattr(train_lib, "STREAM_CHUNK_STEPS", 3)
  data = make_binary_images(100)
  key = jax.random.key(1)

  def source():
    return streaming.StreamingSource(streaming.ArrayReader(data), 16, key, prefetch=3)
  whole = _train(str(tmp_path / "whole"), source(), 25, loop)
  _train(str(tmp_path / "parts"), source(), 15, loop)          # stops mid-epoch (6 steps/epoch)
  parts = _train(str(tmp_path / "parts"), source(), 25, loop)  # a new source resumes at step 15
  for a, b in zip(jax.tree.leaves(whole.params), jax.tree.leaves(parts.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  lines = [json.loads(x) for x in open(tmp_path / "parts" / "metrics.jsonl")]
  assert [r["step"] for r in lines] == [5, 10, 15, 20, 25]


def test_auto_streams_data_bigger_than_a_quarter_of_memory(monkeypatch):
  monkeypatch.setattr(streaming, "memory_budget_bytes", lambda device=None: 1000)
  assert streaming.choose_source("auto", 250) == "memory"
  assert streaming.choose_source("auto", 251) == "stream"
  assert streaming.choose_source("memory", 10 ** 12) == "memory"
  with pytest.raises(ValueError, match="data_source must be 'auto', 'memory' or 'stream'"):
    streaming.choose_source("disk", 1)


def test_the_job_streams_big_arrays_and_keeps_tfds_tfrecord_sets_in_memory(smoke_config,
                                                                            monkeypatch):
  from experiments import job as job_lib
  monkeypatch.setattr(streaming, "memory_budget_bytes", lambda device=None: 4 * 600 * 784 - 4)
  data = job_lib.open_data(smoke_config)
  assert data.source == "stream" and isinstance(data.train, streaming.ArrayReader)
  monkeypatch.setattr(streaming, "memory_budget_bytes", lambda device=None: 4 * 600 * 784)
  data = job_lib.open_data(smoke_config)
  assert data.source == "memory" and isinstance(data.train, np.ndarray)
  assert data.fingerprint == {"source": "memory", "num_train": 600}
  # A tfds set that is not prepared for random access is never auto-streamed.
  from vae.data import DataSettings, tfds_ground_truth
  monkeypatch.setattr(streaming, "memory_budget_bytes", lambda device=None: 1)
  monkeypatch.setattr(tfds_ground_truth, "stored_bytes", lambda name, data_dir: 10 ** 9)
  settings = DataSettings("tfds:shapes3d")
  monkeypatch.setattr(streaming, "is_random_access", lambda name, data_dir: False)
  assert tfds_ground_truth.choose_source("shapes3d", settings) == "memory"
  monkeypatch.setattr(streaming, "is_random_access", lambda name, data_dir: True)
  assert tfds_ground_truth.choose_source("shapes3d", settings) == "stream"


class _FailingReader(streaming.ArrayReader):
  def __init__(self, array, fail_at):
    super().__init__(array)
    self.calls, self.fail_at = 0, fail_at

  def read(self, rows):
    self.calls += 1
    if self.calls >= self.fail_at:
      raise OSError(f"disk gone at read {self.calls}")
    return super().read(rows)


def test_a_read_error_reaches_the_loop_and_close_never_hangs(tmp_path):
  import threading
  data = make_binary_images(100)
  # The error comes after the queue (2 batches) is full: the thread must not
  # block forever handing it over, whether or not anyone takes it.
  src = streaming.StreamingSource(_FailingReader(data, 4), 10, jax.random.key(0), prefetch=2)
  src.host_chunk(0, 1)
  closer = threading.Thread(target=src.close)
  closer.start()
  closer.join(timeout=10)
  assert not closer.is_alive()
  # In training, the reader's error stops the run, naming its cause.
  src = streaming.StreamingSource(_FailingReader(data, 6), 10, jax.random.key(0), prefetch=2)
  with pytest.raises(OSError, match="disk gone"):
    _train(str(tmp_path), src, 20)
  assert src._thread is None


def test_uniform_sampling_draws_with_replacement_as_a_function_of_the_step():
  data = make_binary_images(50)
  src = streaming.StreamingSource(streaming.ArrayReader(data), 40, jax.random.key(2),
                                  sampling="uniform")
  rows = [src.batch_rows(s) for s in range(30)]
  want = [np.asarray(jax.random.randint(jax.random.fold_in(jax.random.key(2), s), (40,), 0, 50))
          for s in range(30)]
  np.testing.assert_array_equal(rows, want)
  assert any(len(set(r.tolist())) < 40 for r in rows)        # with replacement
  np.testing.assert_array_equal(src.host_chunk(7, 2), np.stack([data[rows[7]], data[rows[8]]]))
  src.close()


def test_procedural_dsprites_cannot_be_streamed(smoke_config):
  from experiments import job as job_lib
  smoke_config.dataset, smoke_config.data_source = "dsprites", "stream"
  with pytest.raises(ValueError, match="procedural dsprites is rendered on the device"):
    job_lib.check_config(smoke_config)
  with pytest.raises(ValueError, match="procedural dsprites is rendered on the device"):
    job_lib.open_data(smoke_config)


def test_a_streamed_reader_is_checked_against_the_likelihood():
  x = np.full((20, 28, 28, 1), 0.5, np.float32)
  with pytest.raises(ValueError, match=r"training data \(streamed\).*'cross_entropy'"):
    sources.make_source(streaming.ArrayReader(x), 8, jax.random.key(0), model=_model())
  with pytest.raises(ValueError, match=r"model.data_shape is \(28, 28, 1\).*\(14, 14, 1\)"):
    sources.make_source(streaming.ArrayReader(x[:, :14, :14]), 8, jax.random.key(0),
                        model=_model())


@pytest.mark.slow   # two pairs of processes: ~40 s on 2 cores
def test_two_processes_stream_their_own_rows_and_resume_exactly(tmp_path, npz_dir):
  coord = f"127.0.0.1:{_free_port()}"
  procs = [_run(["stream", tmp_path / "wd", npz_dir, tmp_path / f"p{i}.json", coord, i, 2],
                devices=2, wait=False) for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, se) in zip(procs, outs):
    assert p.returncode == 0, se[-3000:]
  res = sorted((json.load(open(tmp_path / f"p{i}.json")) for i in range(2)),
               key=lambda r: r["process"])
  data = make_binary_images(200)
  single = streaming.StreamingSource(streaming.ArrayReader(data), 40, jax.random.key(7))
  # Each process read only its half of each global batch ...
  assert [r["rows"] for r in res] == [[0, 20], [20, 40]]
  for r, (lo, hi) in zip(res, ([0, 20], [20, 40])):
    want = np.concatenate([single.batch_rows(s)[lo:hi] for s in range(8)])
    np.testing.assert_array_equal(r["rows_read"], want)
  # ... and together they are the single-process batches of steps 0..7.
  want = np.stack([single.host_batch(s) for s in range(8)])
  for r in res:
    np.testing.assert_array_equal(np.asarray(r["full"], np.uint8), want)
    # A new source asked for step 5 continues exactly there.
    np.testing.assert_array_equal(np.asarray(r["resumed"], np.uint8), want[5:8])
  # Training streamed, stopped at step 10 and restarted, ends where the
  # uninterrupted in-memory run on the same two-process mesh ends.
  for r in res:
    for a, b in zip(r["params"]["stream"], r["params"]["memory"]):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  for a, b in zip(res[0]["params"]["stream"], res[1]["params"]["stream"]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  single.close()


@pytest.mark.slow   # a whole streamed tfds job with metrics: ~25 s on 2 cores
def test_shapes3d_streams_from_tfds_with_the_cross_entropy_likelihood(tmp_path):
  """Shapes3D through the streaming source (tfds random access, mocked):
  labels in memory, images read on demand for training, the held-out sample
  and the metrics."""
  tfds = pytest.importorskip("tensorflow_datasets")
  from experiments import job as job_lib
  from experiments.configs import beta_vae_shapes3d
  from vae.data.tfds_ground_truth import StreamedTfdsGroundTruth, TfdsGroundTruth
  c = beta_vae_shapes3d.get_config()
  assert (c.data_source, c.model.likelihood) == ("stream", "cross_entropy")
  c.model.architecture, c.model.encoder_hidden, c.model.decoder_hidden = "mlp", (32,), (32,)
  c.num_steps, c.log_every, c.checkpoint_every, c.eval_every = 6, 3, 3, 0
  c.batch_size, c.eval.max_examples, c.eval.num_importance_samples = 8, 16, 2
  c.eval.metrics, c.eval.metric_scale = ("mig",), 0.002
  c.tensorboard = False
  with tfds.testing.mock_data(num_examples=48):
    job = job_lib.resolve(c)
    assert isinstance(job.train_data, streaming.TfdsReader)
    gt = job.ground_truth_data
    assert isinstance(gt, StreamedTfdsGroundTruth) and not hasattr(gt, "images")
    assert job.train_data.sampling == "uniform"      # as disentanglement_lib samples
    # The reader gives tfds's own images (uint8, scaled 1/255 on the device).
    raw = tfds.data_source("shapes3d", split="train")
    np.testing.assert_array_equal(gt.reader.read(np.array([5, 0, 17])),
                                  np.stack([raw[i]["image"] for i in (5, 0, 17)]))
    assert gt.reader.scale == 1 / 255 and gt.observation_shape == (64, 64, 3)
    # Its observations are what the in-memory set gives for the same examples.
    mem = TfdsGroundTruth.__new__(TfdsGroundTruth)
    mem.factor_sizes, mem.observation_shape = gt.factor_sizes, gt.observation_shape
    mem.nuisance, mem.name = gt.nuisance, gt.name
    mem.set_examples(gt.reader.read(np.arange(48)), np.asarray(gt.labels))
    f = gt.sample_factors(jax.random.key(0), 12)
    np.testing.assert_array_equal(np.asarray(jax.jit(gt.observations)(f)),
                                  np.asarray(jax.jit(mem.observations)(f)))
    res = job_lib.train_and_evaluate(c, str(tmp_path / "wd"), progress=False)
  assert res["step"] == 6 and np.isfinite(res["elbo"]["elbo"])
  assert 0.0 <= res["disentanglement"]["mig"]["mig"] <= 1.0
