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

  python -m experiments.benchmark --notraining --eval_examples 0 --nogeneration \\
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

  python -m experiments.benchmark --notraining --eval_examples 0 --nogeneration --scoring \\
      --scoring_workdir workdirs/studies/pilot/beta_vae-seed0

Learned priors (--priors): the VampPrior's training step (784-200-200-50
MLP, batch --batch_size, K = 500) with its log p(z) as
vae.distributions.gaussian_mixture_log_prob (the gradient by hand), and the
same step with autodiff's gradient of the density as defined, beside the
plain VAE's step, in one process, alternated (--repeats rounds of
--prior_steps steps).

  python -m experiments.benchmark --notraining --eval_examples 0 --nogeneration --priors

Startup (--startup): seconds from the command to the first training step and
from the last step to exit, for the 700-step beta-VAE job (--config default)
and a 10-step vae_images run, each a fresh process; with
--startup_baseline=PATH an older checkout is timed beside this one in the
same run.

  python -m experiments.benchmark --notraining --eval_examples 0 --nogeneration --startup \
      --startup_baseline /path/to/older/worktree

Worker modes: --scaling and --vs_torch run each measurement in a fresh
process, this command with --scaling_worker=N (one scaling row on N devices)
or --step_worker=NAME (our step for one --peer_models entry); a worker prints
one JSON line and nothing else runs.
"""

from __future__ import annotations

import dataclasses
import json
import platform

import jax
from absl import flags

from vae import allocator

from . import (evaluation, generation, loops, methods, metrics, priors, scaling, startup,
               streaming, tables)
from . import vs_torch
from .. import cli

flags.DEFINE_string("data_dir", "", "binarized MNIST .npz folder; empty: random binary data")
flags.DEFINE_integer("steps", 3000, "timed training steps per loop")
flags.DEFINE_integer("chunk", 500, "steps per lax.scan call")
flags.DEFINE_integer("batch_size", 100, "training batch size")
flags.DEFINE_list("models", ["500-500", "200-200"],
                  "MLP hidden widths to benchmark, one model per entry ('200-200' is the "
                  "vae_binarized_mnist network)")
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
                  f"({', '.join(methods.disentangling_methods())}; 'all': every one)")
flags.DEFINE_list("metrics", [], "disentanglement metrics to time against the numpy/"
                  "scikit-learn reference (vae/metrics/reference.py) at the published sample "
                  "sizes: 'all' or names (beta_vae,factor_vae,mig,sap,dci,modularity)")
flags.DEFINE_float("metric_scale", 1.0, "multiplies the metrics' published sample sizes")
flags.DEFINE_integer("method_steps", 20, "timed steps per method (after as many warm-up steps)")
flags.DEFINE_integer("scaling_worker", 0, "worker mode (started by --scaling): print the "
                     "scaling row of N devices as JSON and exit")
flags.DEFINE_boolean("vs_torch", False, "time our training step beside the same step in "
                     "PyTorch eager (experiments/torch_peer.py; needs torch installed), each in "
                     "its own process, for the models in --peer_models on --cores")
flags.DEFINE_list("peer_models", ["conv", "mlp500", "mlp1200"],
                  "models for --vs_torch: conv (dSprites conv VAE, batch 64), mlp500 "
                  "(784-500-500-50 tanh, batch 100), mlp1200 (4096-1200-1200-10 relu on "
                  "64x64 images, batch 64: the beta-VAE paper's dSprites MLP)")
flags.DEFINE_list("cores", ["all", "1"], "CPU sets for --vs_torch: 'all', or a count n "
                  "(the process is pinned to CPUs 0..n-1, as taskset -c does)")
flags.DEFINE_integer("repeats", 3, "alternating repeats of each --vs_torch pair and rounds "
                     "of --priors (the tables give the range)")
flags.DEFINE_string("step_worker", "", "worker mode (started by --vs_torch): print our step's "
                    "figures for one --peer_models entry as JSON and exit")
flags.DEFINE_boolean("priors", False, "the VampPrior's step, its gradient by hand against "
                     "autodiff's, beside the VAE's step")
flags.DEFINE_integer("prior_steps", 60, "timed steps per --priors measurement")
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
flags.DEFINE_boolean("startup", False, "seconds from the command to the first training step "
                     "and from the last step to exit, for the 700-step beta-VAE job "
                     "(--config default) and a 10-step vae_images run, each in a fresh "
                     "process (experiments/benchmark/startup.py)")
flags.DEFINE_string("startup_baseline", "", "--startup: also time this older checkout of the "
                    "repository (e.g. a git worktree), in the same run")
flags.DEFINE_integer("startup_repeats", 1, "--startup: alternating repeats of each row")
flags.DEFINE_list("startup_jobs", ["default", "images"], "--startup: the jobs timed "
                  "(default: the 700-step beta-VAE job, --config default; images: a "
                  "10-step vae_images run)")
flags.DEFINE_string("json", "", "also write the results here")
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Settings:
  """The flags' values, as plain settings (one field per flag, same name)."""
  data_dir: str
  steps: int
  chunk: int
  batch_size: int
  models: list
  latent_dim: int
  eval_examples: int
  generation: bool
  training: bool
  scaling: list
  scaling_batch: int
  batch_sweep: list
  sweep_models: list
  peak_tflops: float
  compute_dtype: str
  methods: list
  metrics: list
  metric_scale: float
  method_steps: int
  scaling_worker: int
  vs_torch: bool
  peer_models: list
  cores: list
  repeats: int
  step_worker: str
  priors: bool
  prior_steps: int
  streaming: bool
  stream_examples: int
  stream_steps: int
  stream_repeats: int
  scoring: bool
  scoring_workdir: str
  dci_agreement: bool
  startup: bool
  startup_baseline: str
  startup_repeats: int
  startup_jobs: list
  json: str

  @classmethod
  def from_flags(cls, values: flags.FlagValues = FLAGS) -> "Settings":
    return cls(**{f.name: values[f.name].value for f in dataclasses.fields(cls)})

  @property
  def workdirs(self) -> list[str]:
    return [w for w in self.scoring_workdir.split(",") if w]


def check(s: Settings) -> None:
  """Refuse, before any benchmark runs, what cannot run."""
  if s.dci_agreement and not s.workdirs:
    cli.usage_error("--dci_agreement needs --scoring_workdir: trained conv dSprites "
                    "workdirs, comma-separated")
  if s.vs_torch and (problem := vs_torch.missing_requirements(s.cores)):
    raise SystemExit(problem)
  methods.resolve_methods(s.methods)


def run_worker(s: Settings) -> dict | None:
  """A worker mode's JSON row, or None when no worker mode is asked."""
  if s.scaling_worker:
    return scaling.scaling_worker(s.scaling_worker, batch=s.scaling_batch, steps=s.steps,
                                  chunk=s.chunk)
  if s.step_worker:
    return vs_torch.step_worker(s.step_worker)
  return None


def _mlp_benchmarks(s: Settings, out: dict) -> None:
  """Training loops, evaluation, generation, scaling and the batch sweep."""
  needs_data = (s.training and s.models) or s.eval_examples
  train_data, valid_data = loops.mnist_data(s.data_dir) if needs_data else (None, None)
  for spec in (s.models if s.training else []):
    hidden = tuple(int(w) for w in spec.split("-"))
    out["training"][f"784-{spec}-{s.latent_dim}"] = loops.bench_training(
        train_data, hidden, latent_dim=s.latent_dim, batch_size=s.batch_size, steps=s.steps,
        chunk=s.chunk)
  if s.eval_examples:
    out["iwae_eval"] = evaluation.bench_eval(valid_data, examples=s.eval_examples)
  if s.generation:
    out["generation"] = generation.bench_generation()
  if s.scaling:
    out["scaling"] = scaling.bench_scaling([int(d) for d in s.scaling], batch=s.scaling_batch,
                                           steps=s.steps, chunk=s.chunk)
  if s.batch_sweep:
    out["sweep"] = scaling.bench_sweep(s.sweep_models, [int(b) for b in s.batch_sweep],
                                       steps=s.steps, chunk=s.chunk,
                                       compute_dtype=s.compute_dtype, peak_tflops=s.peak_tflops)


def _other_benchmarks(s: Settings, out: dict) -> None:
  """Methods, metrics, PyTorch, scoring, DCI agreement, streaming, priors and startup."""
  if s.methods:
    out["methods"] = methods.bench_methods(methods.resolve_methods(s.methods),
                                           steps=s.method_steps, compute_dtype=s.compute_dtype)
  if s.metrics and not s.scoring:
    out["metrics"] = metrics.bench_metrics(metrics.resolve_metrics(s.metrics),
                                           scale=s.metric_scale)
  if s.vs_torch:
    out["vs_torch"] = vs_torch.bench_vs_torch(s.peer_models, s.cores, s.repeats)
  if s.scoring:
    out["scoring"] = metrics.bench_scoring(workdir=(s.workdirs or [""])[0], names=s.metrics,
                                           scale=s.metric_scale)
  if s.dci_agreement:
    out["dci_agreement"] = metrics.bench_dci_agreement(
        s.workdirs, scale=s.metric_scale, progress=lambda row: print(row, flush=True))
  if s.streaming:
    out["streaming"] = streaming.bench_streaming(
        examples=s.stream_examples, steps=s.stream_steps, repeats=s.stream_repeats)
  if s.priors:
    train_data, _ = loops.mnist_data(s.data_dir)
    out["priors"] = priors.bench_priors(train_data[:s.batch_size], steps=s.prior_steps,
                                        repeats=s.repeats)
  if s.startup:
    out["startup"] = startup.bench_startup(s.startup_baseline, s.startup_repeats,
                                           s.startup_jobs)


def run_benchmarks(s: Settings) -> dict:
  """Every benchmark the settings ask for: the results, as written to --json."""
  out = {"device": str(jax.devices()[0]), "backend": jax.default_backend(),
         "jax": jax.__version__, "machine": platform.machine(),
         "batch_size": s.batch_size, "training": {}}
  _mlp_benchmarks(s, out)
  _other_benchmarks(s, out)
  return out


def main(argv):
  del argv
  allocator.tune()   # the malloc settings XLA:CPU needs (vae/allocator.py), before any step
  s = Settings.from_flags()
  row = run_worker(s)
  if row is not None:
    print(json.dumps(row))
    return
  check(s)
  out = run_benchmarks(s)
  tables.print_tables(out, s)
  if s.json:
    with open(s.json, "w") as f:
      json.dump(out, f, indent=2)


def run():
  """The ``vae-benchmark`` console script and ``python -m experiments.benchmark``."""
  cli.run(main, doc=__doc__, module=__name__)
