"""Run in a subprocess by tests/test_parallel.py with a forced device count
(XLA_FLAGS must be set before jax starts, hence a separate process)."""

import json
import sys

import jax
import numpy as np
from experiments import job as job_lib
from vae import optim
from vae.data import sources


def _save_params(state, path):
  leaves = [np.asarray(jax.device_get(x.addressable_shards[0].data))
            for x in jax.tree.leaves(state.params)]
  np.savez(path, *leaves)


def sharded_vs_single(out):
  from tests.conftest import make_binary_images
  from vae import model as model_lib, objectives, parallel, train as train_lib
  data = make_binary_images(256)
  m = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1), latent_dim=4,
                           encoder_hidden=(32,), decoder_hidden=(32,))
  opt = optim.make_optimizer(3e-3)
  step = train_lib.make_train_step(objectives.get_objective("vae"), m, opt)
  src = sources.ArraySource(data, 32, jax.random.key(1))
  results = {}
  for name, devices in (("all", jax.devices()), ("one", jax.devices()[:1])):
    mesh = parallel.make_mesh(devices)
    state = parallel.replicate(train_lib.init_state(jax.random.key(0), m, opt), mesh)
    run = train_lib.make_scan_loop(step, src, mesh)
    arrays = parallel.replicate(src.arrays(), mesh)
    key = parallel.replicate(jax.random.key(2), mesh)
    hlo = run.lower(state, arrays, key, 10).compile().as_text()
    state, metrics = run(state, arrays, key, 10)
    results[name] = {"params": [np.asarray(x).tolist() for x in jax.tree.leaves(state.params)],
                     "loss": np.asarray(metrics["loss"]).tolist(),
                     "devices": len(devices),
                     "param_devices": len(jax.tree.leaves(state.params)[0].sharding.device_set),
                     "all_reduce": "all-reduce" in hlo}
  json.dump(results, open(out, "w"))


def train_run(workdir, num_steps, data_dir, out, coordinator=None, pid=0, nproc=1):
  if coordinator:
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=nproc,
                               process_id=pid)
  from experiments.configs import smoke
  from vae import evaluate as ev
  c = smoke.get_config()
  c.data_dir = data_dir
  c.max_train_examples = 0
  c.num_steps = num_steps
  c.batch_size = 40
  state = job_lib.train(c, workdir, job_lib.load_split(c, "train"), progress=False)
  _save_params(state, out)
  # Evaluation on the same mesh: identical figures on every process, and the
  # same as one device would give (compared by the test).
  valid = job_lib.load_split(c, "validation", 40)
  res = ev.evaluate_params(state.params, valid, jax.random.key(5), model=job_lib.build_model(c),
                           probabilistic=True, spec=job_lib.eval_spec(c))
  print(json.dumps({"step": int(state.step), "devices": jax.device_count(),
                    "process": jax.process_index(), "elbo": res["elbo"]["elbo"],
                    "iwae": res["iwae"]["log_likelihood"],
                    "active_units": res["active_units"]["active_units"]}))


class _LoggingReader:
  """An ArrayReader that records which rows it was asked for."""

  def __init__(self, array):
    from vae.data import streaming
    self.inner = streaming.ArrayReader(array)
    self.num_examples, self.example_shape = self.inner.num_examples, self.inner.example_shape
    self.dtype, self.scale = self.inner.dtype, self.inner.scale
    self.rows = []

  def read(self, rows):
    self.rows.extend(int(r) for r in rows)
    return self.inner.read(rows)


def stream_run(workdir, data_dir, out, coordinator, pid, nproc):
  """Two processes: each streams its own rows; a restarted source and a
  restarted run continue exactly where they stopped."""
  jax.distributed.initialize(coordinator_address=coordinator, num_processes=nproc,
                             process_id=pid)
  from jax.experimental import multihost_utils
  from tests.conftest import make_binary_images
  from vae import parallel
  from vae.data import streaming
  data = make_binary_images(200)
  mesh = parallel.make_mesh()
  reader = _LoggingReader(data)
  src = streaming.StreamingSource(reader, 40, jax.random.key(7), prefetch=3)
  chunk = src.device_chunk(0, 8, mesh)[0]       # steps 0..7, crossing an epoch (5 steps)
  full = np.asarray(multihost_utils.process_allgather(chunk, tiled=True))
  src.close()
  rows_read = list(reader.rows[:8 * 20])
  again = streaming.StreamingSource(reader, 40, jax.random.key(7), prefetch=3)
  resumed = np.asarray(multihost_utils.process_allgather(again.device_chunk(5, 3, mesh)[0],
                                                         tiled=True))
  again.close()
  # A streamed run stopped at step 10 and restarted (new process state, new
  # source), against an uninterrupted in-memory run on the same mesh.
  from experiments.configs import smoke
  params = {}
  for name, kind, stops in (("stream", "stream", (10, 20)), ("memory", "memory", (20,))):
    for n in stops:
      c = smoke.get_config()
      c.data_dir, c.max_train_examples, c.batch_size = data_dir, 400, 40
      c.data_source, c.num_steps, c.log_every, c.checkpoint_every = kind, n, 5, 5
      state = job_lib.train(c, f"{workdir}/{name}", progress=False)
    params[name] = [np.asarray(jax.device_get(x.addressable_shards[0].data)).tolist()
                    for x in jax.tree.leaves(state.params)]
  json.dump({"process": jax.process_index(), "rows": streaming.shard_rows(40, mesh),
             "rows_read": rows_read, "full": full.tolist(), "resumed": resumed.tolist(),
             "params": params}, open(out, "w"))


if __name__ == "__main__":
  mode = sys.argv[1]
  if mode == "sharded_vs_single":
    sharded_vs_single(sys.argv[2])
  elif mode == "stream":
    stream_run(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]),
               int(sys.argv[7]))
  else:
    workdir, steps, data_dir, out = sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    extra = sys.argv[6:]
    if extra:
      train_run(workdir, steps, data_dir, out, extra[0], int(extra[1]), int(extra[2]))
    else:
      train_run(workdir, steps, data_dir, out)
