"""Throughput benchmarks: one module per family, one command for all.

  python -m experiments.benchmark --help        (or the vae-benchmark script)

* ``cli``: the flags, turned into plain ``Settings``, and ``main``; the
  worker modes (--scaling_worker, --step_worker) that --scaling and
  --vs_torch start in fresh processes.
* ``tables``: every printed table.
* ``timing``: the one timing helper (``time_it``: warm up, repeat, the
  range and median) and the alternation of repeated measurements.
* families, each taking plain keyword settings and returning its section of
  the results (the JSON that --json writes): ``loops`` (scanned against
  per-step training), ``evaluation`` (k = 5000 IWAE), ``generation``
  (procedural dSprites), ``scaling`` (devices and batch sizes), ``methods``
  (the objective registry's disentangling methods), ``priors`` (the
  VampPrior's step, its gradient by hand against autodiff's), ``metrics`` (the
  metrics against their reference, scoring, DCI agreement), ``streaming``
  and ``vs_torch`` (PyTorch eager).

Importing the package or a family defines no flags: only ``cli`` does.
"""


def run():
  """The ``vae-benchmark`` console script (``cli.run``)."""
  # Imported on call: importing a family module must not define the
  # command's absl flags.
  from . import cli
  cli.run()
