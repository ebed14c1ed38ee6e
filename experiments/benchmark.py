"""Throughput benchmarks, printed as a table and saved as JSON.

Training: the 784-500-500-50 MLP VAE (batch 100) on binarized MNIST, two ways
in the same process, on the same data and the same steps:
  * scanned:  ``vae.train.make_scan_loop``: data on the device, batches drawn
    inside one ``lax.scan`` of ``--chunk`` steps; no Python between steps.
  * per-step: ``vae.train.jit_train_step`` called from Python once per step,
    each batch gathered on the host (numpy) and transferred (the usual loop).
Evaluation: k = 5000 importance-sampled log-likelihood, examples/s, with the
time projected to the 10,000-image validation split.

  python -m experiments.benchmark --data_dir=../shared/data/binarized_mnist
  python -m experiments.benchmark --steps 2000 --json /tmp/bench.json

Without --data_dir the data are random binary images of the same shape (the
speed does not depend on the pixel values).

Disentangling family (--methods all): steps/s of each method's training step
with the study's conv model (batch 64, 64x64x1 procedural dSprites), built
from its experiments/configs/<method>_dsprites.py and run in the loop training
uses (lax.scan), beside the beta-VAE step as the baseline of the same run.

  python -m experiments.benchmark --notraining --eval_examples 0 --nogeneration \
      --methods all

Streaming (--streaming): the streaming source (vae.data.streaming: a folder
of 64x64x3 PNG files decoded by a thread pool, and a memory-mapped .npy)
against the in-memory source, same batches: examples/s each can feed (no
training), and training steps/s of the conv VAE and of a small MLP with each,
repeated and alternated (--stream_repeats), as ranges.

  python -m experiments.benchmark --notraining --eval_examples 0 --nogeneration --streaming

Against PyTorch (--vs_torch; needs torch): our step and the same step in
PyTorch eager (experiments/torch_peer.py), each in its own process, on all
cores and pinned to one (--cores all,1), repeated and alternated (--repeats),
for the conv VAE, the 784-500-500-50 MLP and the 1200-1200 dSprites MLP; with
the ratio, the step's GFLOP/s (XLA's cost analysis) and its fraction of the
best f32 GEMM rate measured in the same process.

  python -m experiments.benchmark --notraining --eval_examples 0 --nogeneration --vs_torch

Scoring (--scoring): encodes per second of the conv encoder's forward pass in
each of its forms, against the limit its FLOPs set at the f32 GEMM rate
measured in the same process; procedural dSprites rendering; and each
disentanglement metric (--metrics, default all) at the published sample
sizes on a trained model (--scoring_workdir), with its images and seconds.

  python -m experiments.benchmark --notraining --eval_examples 0 --nogeneration --scoring \
      --scoring_workdir workdirs/studies/pilot/beta_vae-seed0
"""

from __future__ import annotations

import json
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from . import job as job_lib
from vae import evaluate as ev
from vae import metrics
from vae import model as model_lib
from vae import objectives
from vae import optim
from vae import train as train_lib
from vae.data import sources

flags.DEFINE_string("data_dir", "", "binarized MNIST .npz folder; empty: random binary data")
flags.DEFINE_integer("steps", 3000, "timed training steps per loop")
flags.DEFINE_integer("chunk", 500, "steps per lax.scan call")
flags.DEFINE_integer("batch_size", 100, "training batch size")
flags.DEFINE_list("models", ["500-500", "200-200"],
                  "MLP hidden widths to benchmark, one model per entry ('500-500' is "
                  "the target of issue 2; '200-200' is the vae_binarized_mnist network)")
flags.DEFINE_integer("latent_dim", 50, "latent dimensions")
flags.DEFINE_integer("eval_examples", 200, "examples for the k=5000 evaluation figure; 0 skips")
flags.DEFINE_boolean("generation", True, "benchmark procedural dSprites generation")
flags.DEFINE_boolean("training", True, "benchmark the MLP training loops")
flags.DEFINE_list("scaling", [], "device counts for the data-parallel scaling table "
                  "(e.g. 1,2,4,8); on a CPU they are forced host devices sharing its cores")
flags.DEFINE_integer("scaling_batch", 512, "global batch of the scaling table")
flags.DEFINE_list("batch_sweep", [], "batch sizes for the throughput sweep (e.g. 64,256,1024,4096), "
                  "MLP 784-500-500-50 and conv 64x64 models, scanned loop")
flags.DEFINE_list("sweep_models", ["mlp", "conv"], "models in the sweep (meant for a GPU)")
flags.DEFINE_float("peak_tflops", 0.0, "the device's peak TFLOP/s, to report the fraction "
                   "reached in the sweep (e.g. 989 bf16 / 67 fp32 dense on an H100 SXM)")
flags.DEFINE_string("compute_dtype", "float32", "float32 or bfloat16 for the sweep")
flags.DEFINE_list("methods", [], "disentangling methods to time with the conv model "
                  "(beta_vae, annealed_vae, beta_tcvae, factor_vae, dip_vae_i, dip_vae_ii; "
                  "'all': every one)")
flags.DEFINE_list("metrics", [], "disentanglement metrics to time against the numpy/"
                  "scikit-learn reference (vae/metrics/reference.py) at the published sample "
                  "sizes: 'all' or names (beta_vae,factor_vae,mig,sap,dci,modularity)")
flags.DEFINE_float("metric_scale", 1.0, "multiplies the metrics' published sample sizes")
flags.DEFINE_integer("method_steps", 20, "timed steps per method (after as many warm-up steps)")
flags.DEFINE_integer("scaling_worker", 0, "internal: run one scaling row on N devices")
flags.DEFINE_boolean("vs_torch", False, "time our training step beside the same step in "
                     "PyTorch eager (experiments/torch_peer.py; needs torch installed), each in "
                     "its own process, for the models in --peer_models on --cores")
flags.DEFINE_list("peer_models", ["conv", "mlp500", "mlp1200"],
                  "models for --vs_torch: conv (dSprites conv VAE, batch 64), mlp500 "
                  "(784-500-500-50 tanh, batch 100), mlp1200 (4096-1200-1200-10 relu on "
                  "64x64 images, batch 64: the beta-VAE paper's dSprites MLP)")
flags.DEFINE_list("cores", ["all", "1"], "CPU sets for --vs_torch: 'all', or a count n "
                  "(the process is pinned to CPUs 0..n-1, as taskset -c does)")
flags.DEFINE_integer("repeats", 3, "alternating repeats of each --vs_torch pair (the table "
                     "gives the range)")
flags.DEFINE_string("step_worker", "", "internal: time our step for one --peer_models entry")
flags.DEFINE_boolean("streaming", False, "the streaming source (image files decoded on the "
                     "host, or a memory-mapped array) against the in-memory source: "
                     "examples/s fed, and training steps/s with each")
flags.DEFINE_integer("stream_examples", 2048, "images written for --streaming (64x64x3 PNG)")
flags.DEFINE_integer("stream_steps", 200, "timed training steps per --streaming row")
flags.DEFINE_integer("stream_repeats", 3, "alternating repeats of each --streaming row")
flags.DEFINE_boolean("scoring", False, "scoring speed: the encoder's forward pass against "
                     "the CPU's GEMM limit (its FLOPs at the measured GFLOP/s), rendering, "
                     "and each of --metrics (default all) at the published sample sizes "
                     "(times --metric_scale) on a trained conv model")
flags.DEFINE_string("scoring_workdir", "", "--scoring: a conv dSprites run's workdir whose "
                    "last checkpoint is scored (empty: an untrained model; FactorVAE's score "
                    "then stops early, no latent being active)")
flags.DEFINE_boolean("dci_agreement", False, "DCI with each importance (gbt, the reference; "
                     "hist_gbt; linear) on the same codes of each --scoring_workdir model "
                     "(comma-separated workdirs), with their times")
flags.DEFINE_string("json", "", "also write the results here")
FLAGS = flags.FLAGS


def _random_binary_mnist(rng, n):
  """[n, 28, 28, 1] uint8 noise with MNIST's fraction of ink (speed does not
  depend on the pixel values)."""
  return (rng.random((n, 28, 28, 1)) < 0.13).astype(np.uint8)


def _data():
  if FLAGS.data_dir:
    from vae.data import binarized_mnist
    return binarized_mnist.load("train", FLAGS.data_dir), binarized_mnist.load(
        "validation", FLAGS.data_dir)
  rng = np.random.default_rng(0)
  return _random_binary_mnist(rng, 50_000), _random_binary_mnist(rng, 10_000)


def _time_scanned(step, src, state, train_key, batch_size, steps, chunk, mesh):
  """Times ``make_scan_loop`` on ``mesh``: one warm-up (compiling) chunk, then
  ``steps // chunk`` (at least one) timed chunks. A host-fed (streaming)
  source gives each chunk's arrays, read ahead by its thread, as in
  ``vae.train.train``. Returns (figures, state)."""
  from vae import parallel
  run = train_lib.make_scan_loop(step, src, mesh)
  state = parallel.replicate(state, mesh)
  host_fed = getattr(src, "host_fed", False)
  arrays = None if host_fed else parallel.replicate(src.arrays(), mesh)
  key = parallel.replicate(train_key, mesh)

  def go(state, s):
    return run(state, src.device_chunk(s, chunk, mesh) if host_fed else arrays, key, chunk)
  state, _ = go(state, 0)
  jax.block_until_ready(state)
  n = max(1, steps // chunk)
  t0 = time.perf_counter()
  for i in range(n):
    state, m = go(state, (i + 1) * chunk)
  jax.block_until_ready(state)
  dt = time.perf_counter() - t0
  if host_fed:
    src.close()
  return {"steps": n * chunk, "seconds": dt,
          "examples_per_sec": n * chunk * batch_size / dt,
          "steps_per_sec": n * chunk / dt,
          "final_loss": float(np.asarray(m["loss"])[-1])}, state


def bench_training(train_data, hidden):
  """examples/s of the scanned and the per-step loop; same steps, same data."""
  model = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1),
                               latent_dim=FLAGS.latent_dim, encoder_hidden=hidden,
                               decoder_hidden=hidden, activation="tanh")
  opt = optim.make_optimizer({"learning_rate": 1e-3, "eps": 1e-4})
  step = train_lib.make_train_step(objectives.get_objective("vae"), model, opt)
  keys = train_lib.named_keys(0)
  src = sources.ArraySource(train_data, FLAGS.batch_size, keys["data"])
  results = {}

  # Scanned, on one device like the per-step loop below.
  from vae import parallel
  results["scanned"], _ = _time_scanned(
      step, src, train_lib.init_state(keys["init"], model, opt), keys["train"],
      FLAGS.batch_size, FLAGS.steps, FLAGS.chunk, parallel.make_mesh(jax.devices()[:1]))
  steps = results["scanned"]["steps"]

  # Per-step: host batches, one jitted call per step.
  jstep = train_lib.jit_train_step(step)
  state = train_lib.init_state(keys["init"], model, opt)
  batches = src.host_batches(0)
  for s in range(FLAGS.chunk):  # same warm-up length
    state, m = jstep(state, next(batches), jax.random.fold_in(keys["train"], s))
  jax.block_until_ready(state)
  t0 = time.perf_counter()
  for s in range(FLAGS.chunk, FLAGS.chunk + steps):
    state, m = jstep(state, next(batches), jax.random.fold_in(keys["train"], s))
  jax.block_until_ready(state)
  dt = time.perf_counter() - t0
  results["per_step"] = {"steps": steps, "seconds": dt,
                         "examples_per_sec": steps * FLAGS.batch_size / dt,
                         "final_loss": float(m["loss"])}
  results["speedup_scanned_over_per_step"] = (
      results["scanned"]["examples_per_sec"] / results["per_step"]["examples_per_sec"])
  return results


def bench_eval(valid_data):
  model = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1), latent_dim=50,
                               encoder_hidden=(200, 200), decoder_hidden=(200, 200))
  params = model_lib.init_params(jax.random.key(0), model)
  n = FLAGS.eval_examples
  ev.iwae_log_likelihood(params, valid_data[:100], jax.random.key(1), model=model,
                         num_samples=5000)  # compile
  r = ev.iwae_log_likelihood(params, valid_data[100:100 + n], jax.random.key(1),
                             model=model, num_samples=5000)
  return {"model": "784-200-200-50", "k": 5000, "examples": n, "seconds": r["seconds"],
          "examples_per_sec": n / r["seconds"],
          "projected_seconds_10k": r["seconds"] * 10_000 / n,
          "peak_rss_mib": r["peak_rss_mib"]}


def bench_generation(batch_sizes=(64, 1024), repeats: int = 20):
  """Images/s of procedural dSprites (render from sampled factors, on the
  device) against gathering the same number of images, at random, from an
  in-memory uint8 array on the device (cast to float32, as training does)."""
  from vae.data.dsprites import DSprites
  ds = DSprites()
  pool = jax.device_put((np.random.default_rng(0).random((20_000, 64, 64, 1)) < 0.05)
                        .astype(np.uint8))
  rows = []
  for n in batch_sizes:
    render = jax.jit(lambda k, n=n: ds.sample(k, n)[0])
    gather = jax.jit(lambda k, n=n: jnp.take(
        pool, jax.random.randint(k, (n,), 0, pool.shape[0]), axis=0).astype(jnp.float32))
    row = {"batch": n}
    for name, fn in (("procedural", render), ("in_memory", gather)):
      jax.block_until_ready(fn(jax.random.key(0)))
      t0 = time.perf_counter()
      for i in range(repeats):
        out = fn(jax.random.key(i + 1))
      jax.block_until_ready(out)
      row[name] = n * repeats / (time.perf_counter() - t0)
    rows.append(row)
  return rows


def _write_png_folder(root: str, n: int, seed: int = 0) -> np.ndarray:
  """``n`` 64x64 RGB PNGs (a coloured box on a dark ground) under ``root``;
  returns the same images as uint8 [n, 64, 64, 3]."""
  import os
  from PIL import Image
  rng = np.random.default_rng(seed)
  imgs = np.full((n, 64, 64, 3), 16, np.uint8)
  for i in range(n):
    y, x, h, w = rng.integers(0, 40, 4)
    imgs[i, y:y + 8 + h % 24, x:x + 8 + w % 24] = rng.integers(64, 256, 3)
    sub = os.path.join(root, f"{i % 16:02d}")
    os.makedirs(sub, exist_ok=True)
    Image.fromarray(imgs[i]).save(os.path.join(sub, f"{i:06d}.png"))
  return imgs


def _feed_rate(src, steps, chunk):
  """Examples/s a source delivers with no training: the in-memory source's
  gather and cast inside a scan, or the streaming source's host reads."""
  if getattr(src, "host_fed", False):
    src.host_chunk(0, chunk)
    t0 = time.perf_counter()
    for i in range(max(1, steps // chunk)):
      src.host_chunk((i + 1) * chunk, chunk)
    dt = time.perf_counter() - t0
    src.close()
    return max(1, steps // chunk) * chunk * src.batch_size / dt
  arrays = src.arrays()

  @jax.jit
  def feed(arrays, start):
    def body(carry, i):
      c, acc = carry
      x, c = src.next(arrays, c, start + i)
      return (c, acc + x.sum()), None     # the whole batch, or XLA gathers one pixel
    return jax.lax.scan(body, (src.init(arrays, start), 0.0), jnp.arange(chunk))[0][1]
  jax.block_until_ready(feed(arrays, 0))
  n = max(1, steps // chunk)
  t0 = time.perf_counter()
  for i in range(n):
    out = feed(arrays, (i + 1) * chunk)
  jax.block_until_ready(out)
  return n * chunk * src.batch_size / (time.perf_counter() - t0)


def bench_streaming():
  """The streaming source against the in-memory source, same data and
  batches (vae.data.streaming); ranges over alternating repeats."""
  import os
  import tempfile
  from vae.data import images, streaming
  batch, chunk = 64, 50
  tmp = tempfile.mkdtemp(prefix="vae_stream_bench_")
  pixels = _write_png_folder(os.path.join(tmp, "png"), FLAGS.stream_examples)
  np.save(os.path.join(tmp, "images.npy"), pixels)
  key = jax.random.key(1)
  shape = (64, 64, 3)

  def make(kind):
    if kind == "in-memory":
      return sources.ArraySource(pixels, batch, key, scale=1 / 255)
    if kind == "stream: PNG files":
      return streaming.StreamingSource(images.image_reader(
          os.path.join(tmp, "png"), shape, "all"), batch, key)
    return streaming.StreamingSource(streaming.ArrayReader(
        np.load(os.path.join(tmp, "images.npy"), mmap_mode="r"), 1 / 255), batch, key)
  kinds = ("in-memory", "stream: PNG files", "stream: memmapped .npy")
  models = {
      "conv VAE": model_lib.make_model(architecture="conv", data_shape=shape, latent_dim=10,
                                       likelihood="cross_entropy"),
      "MLP 256-256": model_lib.make_model(architecture="mlp", data_shape=shape, latent_dim=10,
                                          encoder_hidden=(256,), decoder_hidden=(256,),
                                          activation="relu", likelihood="cross_entropy")}
  opt = optim.make_optimizer({"learning_rate": 1e-4})
  from vae import parallel
  mesh = parallel.make_mesh(jax.devices()[:1])
  rows = {k: {"feed": []} for k in kinds}
  for _ in range(FLAGS.stream_repeats):
    for k in kinds:
      rows[k]["feed"].append(_feed_rate(make(k), 4 * FLAGS.stream_steps, chunk))
  for name, model in models.items():
    step = train_lib.make_train_step(objectives.get_objective("vae"), model, opt)
    for _ in range(FLAGS.stream_repeats):
      for k in kinds:           # a fresh state each time: the loop donates it
        state = train_lib.init_state(jax.random.key(0), model, opt)
        rows[k].setdefault(name, []).append(
            _time_scanned(step, make(k), state, jax.random.key(2), batch, FLAGS.stream_steps,
                          chunk, mesh)[0]["steps_per_sec"])
  import shutil
  shutil.rmtree(tmp, ignore_errors=True)
  return {"batch": batch, "examples": FLAGS.stream_examples, "cpus": os.cpu_count(),
          "rows": rows, "models": list(models)}


def _print_streaming(out):
  r = out["streaming"]
  print(f"\nStreaming vs in-memory source, 64x64x3, batch {r['batch']}, {r['examples']} images, "
        f"{out['device']} ({r['cpus']} CPUs; {FLAGS.stream_repeats} alternating repeats, "
        "min-max)")
  base = r["rows"]["in-memory"]
  print(f"{'source':<24}{'fed ex/s':>22}" + "".join(f"{m + ' steps/s':>26}" for m in r["models"]))
  for k, row in r["rows"].items():
    line = f"{k:<24}{_span(row['feed']):>22}"
    for m in r["models"]:
      ratio = f" ({min(row[m]) / max(base[m]):.2f}-{max(row[m]) / min(base[m]):.2f}x)"
      line += f"{_span(row[m], '{:,.1f}') + ratio:>26}"
    print(line)


def _scanned_rate(model, batch_size, data, steps, chunk, mesh=None):
  """``_time_scanned`` figures of a fresh VAE on ``data`` (an array or a
  ground-truth data set), plus its FLOPs per step."""
  from vae import parallel
  opt = optim.make_optimizer({"learning_rate": 1e-4})
  step = train_lib.make_train_step(objectives.get_objective("vae"), model, opt)
  src = (sources.GroundTruthSource(data, batch_size, jax.random.key(1))
         if not isinstance(data, np.ndarray) else
         sources.ArraySource(data, batch_size, jax.random.key(1)))
  state = train_lib.init_state(jax.random.key(0), model, opt)
  # FLOPs of ONE step from a plain jitted step: XLA's cost analysis counts a
  # while-loop body once, whatever the trip count.
  batch = jax.ShapeDtypeStruct((batch_size,) + tuple(model.data_shape), jnp.float32)
  cost = jax.jit(step).lower(state, batch, jax.random.key(2)).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  figures, _ = _time_scanned(step, src, state, jax.random.key(2), batch_size, steps, chunk,
                             mesh or parallel.make_mesh())
  return {"examples_per_sec": figures["examples_per_sec"],
          "steps_per_sec": figures["steps_per_sec"],
          "flops_per_step": float((cost or {}).get("flops", 0.0))}


METHODS = ("beta_vae", "annealed_vae", "beta_tcvae", "factor_vae", "dip_vae_i", "dip_vae_ii")


def bench_methods():
  """Steps/s of each method's training step, conv model, batch 64, as
  ``train`` runs it (the study's config and its training loop)."""
  import importlib
  from vae import parallel
  from vae.data.dsprites import DSprites
  ds = DSprites()
  names = METHODS if FLAGS.methods == ["all"] else FLAGS.methods
  rows = []
  for name in names:
    cfg = importlib.import_module(f"{__package__}.configs.{name}_dsprites").get_config()
    cfg.model.compute_dtype = FLAGS.compute_dtype
    job = job_lib.resolve(cfg, train_data=ds)
    model, loss_fn, opt, loop = job.model, job.objective, job.optimizer, job.schedule.loop
    step = train_lib.make_train_step(loss_fn, model, opt)
    src = sources.GroundTruthSource(ds, cfg.batch_size, jax.random.key(1))
    mesh = parallel.make_mesh()
    run = (train_lib.make_scan_loop if loop == "scan" else train_lib.make_step_loop)(
        step, src, mesh)
    state = parallel.replicate(
        train_lib.init_state(jax.random.key(0), model, opt, loss_fn), mesh)
    arrays = parallel.replicate(src.arrays(), mesh)
    key = parallel.replicate(jax.random.key(2), mesh)
    n = FLAGS.method_steps
    state, _ = run(state, arrays, key, n)       # compile and warm up
    jax.block_until_ready(state)
    t0 = time.perf_counter()
    state, m = run(state, arrays, key, n)
    jax.block_until_ready(state)
    dt = time.perf_counter() - t0
    rows.append({"method": name, "loop": loop, "batch": cfg.batch_size, "steps": n,
                 "steps_per_sec": n / dt, "examples_per_sec": n * cfg.batch_size / dt,
                 "final_loss": float(np.asarray(m["loss"])[-1])})
  return rows


def _metric_representation():
  """A cheap, fixed, jit-able code of the factor-vector observations: a random
  non-linear mixing plus a pseudo-random component, 10 latents, so scores are
  between 0 and 1 and the time goes to the metric, not the encoder."""
  rng = np.random.default_rng(0)
  a = jnp.asarray(rng.normal(size=(5, 10)), jnp.float32)
  b = jnp.asarray(rng.normal(size=(5, 10)) * 1000.0, jnp.float32)

  def rep(x):
    h = jnp.sin(x @ b) * 43758.5453
    return jnp.tanh(x @ a) + 0.2 * (h - jnp.floor(h))
  return jax.jit(rep)


def bench_metrics():
  """Each metric at the published sample sizes (times --metric_scale), ours
  (first call, compiling; then a second call with another key) against the
  numpy/scikit-learn reference, same representation, same data set."""
  from vae.data.synthetic import FactorVectors
  from vae.metrics import reference as ref
  gt = FactorVectors()                                 # dSprites' factor sizes
  rep = _metric_representation()
  scale = FLAGS.metric_scale
  names = list(metrics.METRICS) if FLAGS.metrics == ["all"] else FLAGS.metrics
  rows = []
  for name in names:
    opts = metrics.scale_protocol(name, scale)
    if name == "dci":
      opts["importance"] = "linear"
    ours = lambda seed: metrics.METRICS[name](gt, rep, jax.random.key(seed), **opts)
    t0 = time.perf_counter()
    ours(0)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    score = ours(1)
    steady = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    n = lambda d: max(int(round(d * scale)), 16)
    t0 = time.perf_counter()
    if name == "beta_vae":
      theirs = ref.beta_vae(gt, rep, rng, n(10_000), n(5_000))
    elif name == "factor_vae":
      theirs = ref.factor_vae(gt, rep, rng, n(10_000), n(5_000), n(10_000))
    else:
      xtr, ytr = ref.generate_codes(gt, rep, n(10_000), rng)
      xte, yte = ref.generate_codes(gt, rep, n(5_000), rng)
      if name == "mig":
        theirs = ref.mig_from_codes(xtr, ytr)
      elif name == "sap":
        theirs = ref.sap_from_codes(xtr, ytr, xte, yte)
      elif name == "dci":
        theirs = ref.dci_from_codes(xtr, ytr, xte, yte, importance="linear")
      else:
        theirs = ref.modularity_from_codes(xtr, ytr, xte, yte)
    reference = time.perf_counter() - t0
    key = metrics.SCORE_KEYS[name]
    rows.append({"metric": name + (" (linear)" if name == "dci" else ""),
                 "ours_first_seconds": first, "ours_seconds": steady,
                 "reference_seconds": reference, "speedup": reference / steady,
                 "speedup_first_call": reference / first,
                 "ours_score": score[key], "reference_score": theirs[key]})
  return rows


# Multiply-adds of the conv encoder's layers for one 64x64x1 image: four
# 4x4 stride-2 convs (output H*W*C_out, 16*C_in taps), FC 1024->256, head 256->20.
ENCODER_FLOPS = 2 * (32 * 32 * 32 * 16 * 1 + 16 * 16 * 32 * 16 * 32 + 8 * 8 * 64 * 16 * 32
                     + 4 * 4 * 64 * 16 * 64 + 1024 * 256 + 256 * 20)


def _best_seconds(fn, repeats=3):
  fn()                                              # compile
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return min(times), max(times)


def bench_scoring():
  """What scoring a conv model costs, against what the CPU allows."""
  import dataclasses
  from vae import model as model_lib
  from vae.data import dsprites
  out = {}
  a = jax.random.normal(jax.random.key(0), (1024, 1024), jnp.float32)
  gemm = jax.jit(lambda a: a @ a)
  lo, hi = _best_seconds(lambda: gemm(a), 5)
  out["gemm_gflops"] = [2 * 1024 ** 3 / hi / 1e9, 2 * 1024 ** 3 / lo / 1e9]
  out["encoder_mflops_per_image"] = ENCODER_FLOPS / 1e6
  out["limit_images_per_sec"] = out["gemm_gflops"][1] * 1e9 / ENCODER_FLOPS
  m = model_lib.make_model(architecture="conv", data_shape=(64, 64, 1), latent_dim=10,
                           likelihood="bernoulli")
  params = model_lib.init_params(jax.random.key(0), m)
  if FLAGS.scoring_workdir:
    m, params = job_lib.restore_params(FLAGS.scoring_workdir.split(",")[0])
  x = (jax.random.uniform(jax.random.key(1), (8, 512, 64, 64, 1)) > 0.5).astype(jnp.float32)
  n = x.shape[0] * x.shape[1]
  gemm_model = metrics.forward_model(m, "gemm")
  paths = {
      "GEMM conv, one example at a time (vmap; scoring before)": jax.jit(lambda p, x: jax.lax.map(
          lambda b: jax.vmap(lambda xi: model_lib.encode(p, xi, model=gemm_model)[0])(b), x)),
      "GEMM conv, batch 512 (training path)": jax.jit(lambda p, x: jax.lax.map(
          lambda b: model_lib.encode_batch(p, b, model=gemm_model)[0], x)),
      "XLA conv, batch 512 (scoring now)": jax.jit(lambda p, x: jax.lax.map(
          metrics.representation_from_params(p, m), x)),
  }
  out["encoder"] = []
  for name, fn in paths.items():
    lo, hi = _best_seconds(lambda: fn(params, x))
    out["encoder"].append({"path": name, "images_per_sec": [n / hi, n / lo],
                           "of_limit": n / lo / out["limit_images_per_sec"]})
  gt = dsprites.DSprites()
  factors = gt.sample_factors(jax.random.key(2), n)
  render = jax.jit(lambda f: jax.lax.map(gt.observations, f.reshape(8, 512, -1)))
  lo, hi = _best_seconds(lambda: render(factors))
  out["render_images_per_sec"] = [n / hi, n / lo]
  names = list(metrics.METRICS) if FLAGS.metrics in ([], ["all"]) else FLAGS.metrics
  res = metrics.score_disentanglement(params, gt, jax.random.key(3), model=m, names=names,
                                      scale=FLAGS.metric_scale, progress=True)
  out["metrics"] = [{"metric": k, "score": v[metrics.SCORE_KEYS[k]], "seconds": v["seconds"],
                     "images": v["images_encoded"], "encode_seconds": v["encode_seconds"]}
                    for k, v in res.items()]
  return out


def bench_dci_agreement():
  """DCI of real representations with every importance, on the same codes."""
  from vae.data import dsprites
  from vae.metrics import dci, utils as metric_utils
  gt = dsprites.DSprites()
  opts = metrics.protocol("dci", metrics.scale_protocol("dci", FLAGS.metric_scale))
  if not FLAGS.scoring_workdir:
    raise app.UsageError("--dci_agreement needs --scoring_workdir: trained conv dSprites "
                         "workdirs, comma-separated")
  rows = []
  for workdir in FLAGS.scoring_workdir.split(","):
    m, params = job_lib.restore_params(workdir)
    codes = metric_utils.sample_train_test_codes(
        gt, metrics.representation_from_params(params, m), jax.random.key(0),
        opts["num_train"], opts["num_test"], opts["batch_size"])
    for imp in dci.IMPORTANCES:
      t0 = time.perf_counter()
      r = dci.dci_from_codes(*codes, factor_sizes=gt.factor_sizes, importance=imp)
      rows.append({"model": workdir, "importance": imp, "seconds": time.perf_counter() - t0,
                   **{k: r[k] for k in ("disentanglement", "completeness",
                                        "informativeness_test")}})
      print(rows[-1], flush=True)
  return rows


def _print_dci_agreement(out):
  print(f"\nDCI of the same codes with each importance (published sample sizes x "
        f"{FLAGS.metric_scale}), {out['device']}")
  print(f"{'model':<48}{'importance':>10}{'D':>7}{'C':>7}{'I test':>8}{'seconds':>9}")
  for r in out["dci_agreement"]:
    print(f"{r['model'][-48:]:<48}{r['importance']:>10}{r['disentanglement']:>7.3f}"
          f"{r['completeness']:>7.3f}{r['informativeness_test']:>8.3f}{r['seconds']:>9.1f}")


def _print_scoring(out):
  s = out["scoring"]
  print(f"\nScoring, conv encoder {s['encoder_mflops_per_image']:.2f} MFLOP/image, "
        f"{out['device']}: XLA f32 GEMM 1024^3 {s['gemm_gflops'][0]:.0f}-"
        f"{s['gemm_gflops'][1]:.0f} GFLOP/s, so at most {s['limit_images_per_sec']:,.0f} "
        "images/s")
  print(f"{'encoder forward':<58}{'images/s (min-max)':>22}{'of limit':>10}")
  for r in s["encoder"]:
    lo, hi = r["images_per_sec"]
    print(f"{r['path']:<58}{lo:>11,.0f}-{hi:<10,.0f}{100 * r['of_limit']:>9.0f}%")
  lo, hi = s["render_images_per_sec"]
  print(f"{'procedural dSprites rendering':<58}{lo:>11,.0f}-{hi:<10,.0f}")
  print(f"{'metric':<12}{'score':>8}{'seconds':>9}{'images':>11}{'encoding s':>12}"
        f"{'images/s':>10}{'other s':>9}")
  for r in s["metrics"]:
    rate = r["images"] / max(r["encode_seconds"], 1e-9)
    print(f"{r['metric']:<12}{r['score']:>8.3f}{r['seconds']:>9.1f}{r['images']:>11,}"
          f"{r['encode_seconds']:>12.1f}{rate:>10,.0f}{r['seconds'] - r['encode_seconds']:>9.1f}")


def bench_scaling():
  """One subprocess per device count (the count is fixed when jax starts)."""
  import os
  import subprocess
  import sys
  rows = []
  for d in FLAGS.scaling:
    env = dict(os.environ)
    if jax.default_backend() == "cpu":
      env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={int(d)}"
    out = subprocess.run([sys.executable, "-m", f"{__package__}.benchmark", f"--scaling_worker={d}",
                          f"--scaling_batch={FLAGS.scaling_batch}", f"--steps={FLAGS.steps}",
                          f"--chunk={FLAGS.chunk}"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
      raise RuntimeError(out.stderr[-2000:])
    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
  return rows


def scaling_worker(n):
  from vae import parallel
  devices = jax.devices()
  if len(devices) < n:
    raise ValueError(f"asked for {n} devices, have {len(devices)}")
  model = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1), latent_dim=50,
                               encoder_hidden=(500, 500), decoder_hidden=(500, 500))
  data = _random_binary_mnist(np.random.default_rng(0), 20_000)
  r = _scanned_rate(model, FLAGS.scaling_batch, data, FLAGS.steps, FLAGS.chunk,
                    parallel.make_mesh(devices[:n]))
  print(json.dumps({"devices": n, "platform": jax.default_backend(), **r}))


def bench_sweep():
  from vae.data.dsprites import DSprites
  rows = []
  mnist = _random_binary_mnist(np.random.default_rng(0), 20_000)
  for arch in FLAGS.sweep_models:
    for b in (int(x) for x in FLAGS.batch_sweep):
      if arch == "mlp":
        model = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1), latent_dim=50,
                                     encoder_hidden=(500, 500), decoder_hidden=(500, 500),
                                     compute_dtype=FLAGS.compute_dtype)
        data = mnist
      else:
        model = model_lib.make_model(architecture="conv", data_shape=(64, 64, 1), latent_dim=10,
                                     compute_dtype=FLAGS.compute_dtype)
        data = DSprites()
      r = _scanned_rate(model, b, data, FLAGS.steps, FLAGS.chunk)
      tflops = r["flops_per_step"] * r["steps_per_sec"] / 1e12
      r.update({"model": arch, "batch": b, "tflops": tflops,
                "fraction_of_peak": tflops / FLAGS.peak_tflops if FLAGS.peak_tflops else None})
      rows.append(r)
  return rows


# --vs_torch: the same network, loss and optimizer (Adam) in both, random
# binary images held in memory, one shuffled batch per step.
PEER_MODELS = {
    "conv": dict(model=dict(architecture="conv", data_shape=(64, 64, 1), latent_dim=10),
                 batch=64, steps=60, torch=["--arch", "conv", "--latent", "10"]),
    "mlp500": dict(model=dict(architecture="mlp", data_shape=(28, 28, 1), latent_dim=50,
                              encoder_hidden=(500, 500), decoder_hidden=(500, 500),
                              activation="tanh"),
                   batch=100, steps=600, torch=["--arch", "mlp", "--input", "784", "--hidden",
                                                "500,500", "--latent", "50"]),
    "mlp1200": dict(model=dict(architecture="mlp", data_shape=(64, 64, 1), latent_dim=10,
                               encoder_hidden=(1200, 1200), decoder_hidden=(1200, 1200),
                               activation="relu"),
                    batch=64, steps=200, torch=["--arch", "mlp", "--input", "4096", "--hidden",
                                                "1200,1200", "--latent", "10", "--activation",
                                                "relu"]),
}


def _matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
  """The best f32 GEMM rate (n x n x n) of this process's devices: the
  machine's practical peak, against which a step's FLOP rate is a fraction."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  jax.block_until_ready(f(a))
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(f(a))
    best = min(best, time.perf_counter() - t0)
  return 2 * n ** 3 / best / 1e9


def step_worker(name):
  """Our step for one PEER_MODELS entry: the scanned loop (what ``train``
  runs) and the per-step loop, with XLA's FLOPs per step and the GEMM peak."""
  spec = PEER_MODELS[name]
  model = model_lib.make_model(**spec["model"])
  shape = spec["model"]["data_shape"]
  data = (np.random.default_rng(0).random((5000,) + tuple(shape)) < 0.5).astype(np.uint8)
  batch, steps = spec["batch"], spec["steps"]
  chunk = max(1, steps // 3)
  r = _scanned_rate(model, batch, data, steps, chunk)
  opt = optim.make_optimizer({"learning_rate": 1e-4})
  step = train_lib.make_train_step(objectives.get_objective("vae"), model, opt)
  src = sources.ArraySource(data, batch, jax.random.key(1))
  run = train_lib.make_step_loop(step, src)
  state = train_lib.init_state(jax.random.key(0), model, opt)
  state, _ = run(state, src.arrays(), jax.random.key(2), chunk)
  jax.block_until_ready(state)
  t0 = time.perf_counter()
  state, _ = run(state, src.arrays(), jax.random.key(2), steps)
  jax.block_until_ready(state)
  r["per_step_examples_per_sec"] = steps * batch / (time.perf_counter() - t0)
  r["matmul_gflops"] = _matmul_gflops()
  print(json.dumps(r))


def _pinned(cmd, cores: str):
  """``cmd`` pinned to CPUs 0..n-1 with taskset (unchanged for 'all')."""
  import shutil
  if cores == "all":
    return cmd
  if not shutil.which("taskset"):
    raise SystemExit("--cores n needs taskset (util-linux)")
  return ["taskset", "-c", f"0-{int(cores) - 1}", *cmd]


def bench_vs_torch():
  """Rows of (model, cores): ours (scanned and per-step) and PyTorch eager,
  each measured ``--repeats`` times, alternating, in fresh processes."""
  import importlib.util
  import os
  import subprocess
  import sys
  if importlib.util.find_spec("torch") is None:
    raise SystemExit("--vs_torch needs PyTorch: pip install torch (a CPU build is enough)")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

  def run(cmd, cores):
    out = subprocess.run(_pinned(cmd, cores), cwd=root, capture_output=True, text=True)
    if out.returncode != 0:
      raise RuntimeError(" ".join(cmd) + "\n" + out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])

  rows = []
  for name in FLAGS.peer_models:
    spec = PEER_MODELS[name]
    for cores in FLAGS.cores:
      ours, theirs = [], []
      for _ in range(FLAGS.repeats):
        ours.append(run([sys.executable, "-m", f"{__package__}.benchmark",
                         f"--step_worker={name}"], cores))
        theirs.append(run([sys.executable, "-m", f"{__package__}.torch_peer", *spec["torch"],
                           "--batch", str(spec["batch"]),
                           "--steps", str(max(20, spec["steps"] // 2))], cores))
      scanned = [o["examples_per_sec"] for o in ours]
      per_step = [o["per_step_examples_per_sec"] for o in ours]
      torch_rate = [t["examples_per_sec"] for t in theirs]
      flops = ours[0]["flops_per_step"]
      gflops = [o["steps_per_sec"] * flops / 1e9 for o in ours]
      peak = [o["matmul_gflops"] for o in ours]
      rows.append({"model": name, "cores": cores, "batch": spec["batch"],
                   "ours_scanned": scanned, "ours_per_step": per_step, "torch": torch_rate,
                   "ratio_scanned_over_torch": [a / b for a, b in zip(scanned, torch_rate)],
                   "flops_per_step": flops, "gflops": gflops, "matmul_peak_gflops": peak,
                   "fraction_of_peak": [g / p for g, p in zip(gflops, peak)],
                   "torch_version": theirs[0]["torch"]})
  return rows


def _span(values, fmt="{:,.0f}"):
  lo, hi = min(values), max(values)
  return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def _print_vs_torch(out):
  print(f"\nOur training step vs the same step in PyTorch eager (experiments/torch_peer.py, "
        f"torch {out['vs_torch'][0]['torch_version']}), examples/s, ranges over "
        f"{FLAGS.repeats} alternating runs, each in its own process")
  print(f"{'model':<9}{'cores':>6}{'ours scanned':>15}{'ours per-step':>15}{'PyTorch':>15}"
        f"{'ratio':>12}{'median':>8}{'GFLOP/s':>10}{'of GEMM peak':>14}")
  for r in out["vs_torch"]:
    print(f"{r['model']:<9}{r['cores']:>6}{_span(r['ours_scanned']):>15}"
          f"{_span(r['ours_per_step']):>15}{_span(r['torch']):>15}"
          f"{_span(r['ratio_scanned_over_torch'], '{:.2f}x'):>12}"
          f"{float(np.median(r['ratio_scanned_over_torch'])):>7.2f}x{_span(r['gflops']):>10}"
          f"{_span([100 * f for f in r['fraction_of_peak']], '{:.0f}%'):>14}")


def main(argv):
  del argv
  if FLAGS.scaling_worker:
    scaling_worker(FLAGS.scaling_worker)
    return
  if FLAGS.step_worker:
    step_worker(FLAGS.step_worker)
    return
  train_data, valid_data = _data()
  out = {"device": str(jax.devices()[0]), "backend": jax.default_backend(),
         "jax": jax.__version__, "machine": platform.machine(),
         "batch_size": FLAGS.batch_size, "training": {}}
  for spec in (FLAGS.models if FLAGS.training else []):
    hidden = tuple(int(w) for w in spec.split("-"))
    out["training"][f"784-{spec}-{FLAGS.latent_dim}"] = bench_training(train_data, hidden)
  if FLAGS.eval_examples:
    out["iwae_eval"] = bench_eval(valid_data)
  if FLAGS.generation:
    out["generation"] = bench_generation()
  if FLAGS.scaling:
    out["scaling"] = bench_scaling()
  if FLAGS.batch_sweep:
    out["sweep"] = bench_sweep()
  if FLAGS.methods:
    out["methods"] = bench_methods()
  if FLAGS.metrics and not FLAGS.scoring:
    out["metrics"] = bench_metrics()
  if FLAGS.vs_torch:
    out["vs_torch"] = bench_vs_torch()
  if FLAGS.scoring:
    out["scoring"] = bench_scoring()
  if FLAGS.dci_agreement:
    out["dci_agreement"] = bench_dci_agreement()
  if FLAGS.streaming:
    out["streaming"] = bench_streaming()
  if out["training"]:
    _print_training(out)
  if "iwae_eval" in out:
    e = out["iwae_eval"]
    print(f"\nIWAE log-likelihood, k=5000, 784-200-200-50: {e['examples_per_sec']:.1f} "
          f"examples/s; 10k split projected {e['projected_seconds_10k'] / 60:.1f} min; "
          f"peak RSS {e['peak_rss_mib']:.0f} MiB")
  if "generation" in out:
    _print_generation(out)
  if "scaling" in out:
    print(f"\nData-parallel scaling, MLP VAE 784-500-500-50, global batch {FLAGS.scaling_batch}, "
          f"scanned loop ({out['backend']}{'; forced host devices share the CPU cores' if out['backend'] == 'cpu' else ''})")
    print(f"{'devices':>8}{'examples/s':>14}{'vs 1 device':>13}")
    base = out["scaling"][0]["examples_per_sec"]
    for r in out["scaling"]:
      print(f"{r['devices']:>8}{r['examples_per_sec']:>14,.0f}{r['examples_per_sec'] / base:>12.2f}x")
  if "sweep" in out:
    print(f"\nThroughput by batch size, scanned loop, {FLAGS.compute_dtype}, {out['device']}")
    print(f"{'model':<6}{'batch':>7}{'examples/s':>14}{'TFLOP/s':>10}{'of peak':>9}")
    for r in out["sweep"]:
      frac = f"{100 * r['fraction_of_peak']:.1f}%" if r["fraction_of_peak"] else "n/a"
      print(f"{r['model']:<6}{r['batch']:>7}{r['examples_per_sec']:>14,.0f}{r['tflops']:>10.3f}{frac:>9}")
  if "methods" in out:
    _print_methods(out)
  if "vs_torch" in out:
    _print_vs_torch(out)
  if "streaming" in out:
    _print_streaming(out)
  if "scoring" in out:
    _print_scoring(out)
  if "dci_agreement" in out:
    _print_dci_agreement(out)
  if "metrics" in out:
    print(f"\nDisentanglement metrics, published sample sizes x {FLAGS.metric_scale}, "
          f"{out['device']}: ours (first call compiles) vs the numpy/scikit-learn reference")
    print(f"{'metric':<18}{'ours s':>9}{'1st call s':>11}{'reference s':>13}{'speed-up':>10}"
          f"{'score':>8}{'ref score':>10}")
    for r in out["metrics"]:
      print(f"{r['metric']:<18}{r['ours_seconds']:>9.3f}{r['ours_first_seconds']:>11.2f}"
            f"{r['reference_seconds']:>13.2f}{r['speedup']:>9.1f}x{r['ours_score']:>8.3f}"
            f"{r['reference_score']:>10.3f}")
  if FLAGS.json:
    with open(FLAGS.json, "w") as f:
      json.dump(out, f, indent=2)


def _print_training(out):
  print(f"\nTraining throughput, MLP VAE, batch {FLAGS.batch_size}, {out['device']} "
        f"(scanned: {FLAGS.chunk} steps per lax.scan; per-step: host-fed, one jit call a step)")
  print(f"{'model':<20}{'scanned ex/s':>14}{'per-step ex/s':>15}{'speed-up':>10}{'steps':>8}")
  for name, tr in out["training"].items():
    print(f"{name:<20}{tr['scanned']['examples_per_sec']:>14,.0f}"
          f"{tr['per_step']['examples_per_sec']:>15,.0f}"
          f"{tr['speedup_scanned_over_per_step']:>9.2f}x{tr['scanned']['steps']:>8}")


def _print_methods(out):
  rows = out["methods"]
  base = next((r for r in rows if r["method"] == "beta_vae"), rows[0])
  print(f"\nDisentangling family, conv 64x64x1, batch {rows[0]['batch']}, "
        f"{FLAGS.compute_dtype}, {out['device']} (vs {base['method']} in this run)")
  print(f"{'method':<14}{'loop':>9}{'steps/s':>10}{'examples/s':>12}{'vs base':>9}")
  for r in rows:
    print(f"{r['method']:<14}{r['loop']:>9}{r['steps_per_sec']:>10.2f}"
          f"{r['examples_per_sec']:>12,.0f}{r['steps_per_sec'] / base['steps_per_sec']:>8.2f}x")


def _print_generation(out):
  print(f"\nProcedural dSprites (rendered on the device) vs the same number of images "
        f"gathered from an in-memory array, images/s, {out['device']}")
  print(f"{'batch':>8}{'procedural':>14}{'in-memory':>14}")
  for r in out["generation"]:
    print(f"{r['batch']:>8}{r['procedural']:>14,.0f}{r['in_memory']:>14,.0f}")


def run():
  """The ``vae-benchmark`` console script."""
  import sys
  sys.modules["__main__"].__doc__ = __doc__     # what --help prints
  app.run(main)


if __name__ == "__main__":
  run()
