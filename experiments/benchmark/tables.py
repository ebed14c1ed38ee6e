"""The printed tables: one function per result section, ``print_tables``
for all of them in their order. Each reads the results (the JSON written
with ``--json``) and the few settings the results do not record."""

from __future__ import annotations

from .timing import median, span


def _span(values, fmt="{:,.0f}"):
  lo, hi = span(values)
  return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def print_training(out, s):
  print(f"\nTraining throughput, MLP VAE, batch {s.batch_size}, {out['device']} "
        f"(scanned: {s.chunk} steps per lax.scan; per-step: host-fed, one jit call a step)")
  print(f"{'model':<20}{'scanned ex/s':>14}{'per-step ex/s':>15}{'speed-up':>10}{'steps':>8}")
  for name, tr in out["training"].items():
    print(f"{name:<20}{tr['scanned']['examples_per_sec']:>14,.0f}"
          f"{tr['per_step']['examples_per_sec']:>15,.0f}"
          f"{tr['speedup_scanned_over_per_step']:>9.2f}x{tr['scanned']['steps']:>8}")


def print_iwae_eval(out, s):
  e = out["iwae_eval"]
  print(f"\nIWAE log-likelihood, k=5000, 784-200-200-50: {e['examples_per_sec']:.1f} "
        f"examples/s; 10k split projected {e['projected_seconds_10k'] / 60:.1f} min; "
        f"peak RSS {e['peak_rss_mib']:.0f} MiB")


def print_generation(out, s):
  print(f"\nProcedural dSprites (rendered on the device) vs the same number of images "
        f"gathered from an in-memory array, images/s, {out['device']}")
  print(f"{'batch':>8}{'procedural':>14}{'in-memory':>14}")
  for r in out["generation"]:
    print(f"{r['batch']:>8}{r['procedural']:>14,.0f}{r['in_memory']:>14,.0f}")


def print_scaling(out, s):
  shared = "; forced host devices share the CPU cores" if out["backend"] == "cpu" else ""
  print(f"\nData-parallel scaling, MLP VAE 784-500-500-50, global batch {s.scaling_batch}, "
        f"scanned loop ({out['backend']}{shared})")
  print(f"{'devices':>8}{'examples/s':>14}{'vs 1 device':>13}")
  base = out["scaling"][0]["examples_per_sec"]
  for r in out["scaling"]:
    print(f"{r['devices']:>8}{r['examples_per_sec']:>14,.0f}{r['examples_per_sec'] / base:>12.2f}x")


def print_sweep(out, s):
  print(f"\nThroughput by batch size, scanned loop, {s.compute_dtype}, {out['device']}")
  print(f"{'model':<6}{'batch':>7}{'examples/s':>14}{'TFLOP/s':>10}{'of peak':>9}")
  for r in out["sweep"]:
    frac = f"{100 * r['fraction_of_peak']:.1f}%" if r["fraction_of_peak"] else "n/a"
    print(f"{r['model']:<6}{r['batch']:>7}{r['examples_per_sec']:>14,.0f}{r['tflops']:>10.3f}{frac:>9}")


def print_methods(out, s):
  rows = out["methods"]
  base = next((r for r in rows if r["method"] == "beta_vae"), rows[0])
  print(f"\nDisentangling family, conv 64x64x1, batch {rows[0]['batch']}, "
        f"{s.compute_dtype}, {out['device']} (vs {base['method']} in this run)")
  print(f"{'method':<14}{'loop':>9}{'steps/s':>10}{'examples/s':>12}{'vs base':>9}")
  for r in rows:
    print(f"{r['method']:<14}{r['loop']:>9}{r['steps_per_sec']:>10.2f}"
          f"{r['examples_per_sec']:>12,.0f}{r['steps_per_sec'] / base['steps_per_sec']:>8.2f}x")


def print_priors(out, s):
  rows = out["priors"]
  print(f"\nLearned priors: the VampPrior's step (K = {rows[0]['num_components']}, 784-200-200-50 "
        f"MLP, batch {rows[0]['batch']}, Adam), {out['device']}; each round alternates the three")
  print(f"{'step':<32}{'steps/s':>16}{'vs VAE':>14}{'first loss':>12}")
  for r in rows:
    print(f"{r['step']:<32}{_span(r['steps_per_sec'], '{:,.1f}'):>16}"
          f"{_span(r['vs_vae'], '{:.3f}'):>14}{r['first_loss']:>12.4f}")


def print_vs_torch(out, s):
  print(f"\nOur training step vs the same step in PyTorch eager (experiments/torch_peer.py, "
        f"torch {out['vs_torch'][0]['torch_version']}), examples/s, ranges over "
        f"{s.repeats} alternating runs, each in its own process")
  print(f"{'model':<9}{'cores':>6}{'ours scanned':>15}{'ours per-step':>15}{'PyTorch':>15}"
        f"{'ratio':>12}{'median':>8}{'GFLOP/s':>10}{'of GEMM peak':>14}")
  for r in out["vs_torch"]:
    print(f"{r['model']:<9}{r['cores']:>6}{_span(r['ours_scanned']):>15}"
          f"{_span(r['ours_per_step']):>15}{_span(r['torch']):>15}"
          f"{_span(r['ratio_scanned_over_torch'], '{:.2f}x'):>12}"
          f"{median(r['ratio_scanned_over_torch']):>7.2f}x{_span(r['gflops']):>10}"
          f"{_span([100 * f for f in r['fraction_of_peak']], '{:.0f}%'):>14}")


def print_streaming(out, s):
  r = out["streaming"]
  print(f"\nStreaming vs in-memory source, 64x64x3, batch {r['batch']}, {r['examples']} images, "
        f"{out['device']} ({r['cpus']} CPUs; {s.stream_repeats} alternating repeats, "
        "min-max)")
  base = r["rows"]["in-memory"]
  print(f"{'source':<24}{'fed ex/s':>22}" + "".join(f"{m + ' steps/s':>26}" for m in r["models"]))
  for k, row in r["rows"].items():
    line = f"{k:<24}{_span(row['feed']):>22}"
    for m in r["models"]:
      ratio = f" ({min(row[m]) / max(base[m]):.2f}-{max(row[m]) / min(base[m]):.2f}x)"
      line += f"{_span(row[m], '{:,.1f}') + ratio:>26}"
    print(line)


def print_scoring(out, s):
  r = out["scoring"]
  print(f"\nScoring, conv encoder {r['encoder_mflops_per_image']:.2f} MFLOP/image, "
        f"{out['device']}: XLA f32 GEMM 1024^3 {r['gemm_gflops'][0]:.0f}-"
        f"{r['gemm_gflops'][1]:.0f} GFLOP/s, so at most {r['limit_images_per_sec']:,.0f} "
        "images/s")
  print(f"{'encoder forward':<58}{'images/s (min-max)':>22}{'of limit':>10}")
  for e in r["encoder"]:
    lo, hi = e["images_per_sec"]
    print(f"{e['path']:<58}{lo:>11,.0f}-{hi:<10,.0f}{100 * e['of_limit']:>9.0f}%")
  lo, hi = r["render_images_per_sec"]
  print(f"{'procedural dSprites rendering':<58}{lo:>11,.0f}-{hi:<10,.0f}")
  print(f"{'metric':<12}{'score':>8}{'seconds':>9}{'images':>11}{'encoding s':>12}"
        f"{'images/s':>10}{'other s':>9}")
  for m in r["metrics"]:
    rate = m["images"] / max(m["encode_seconds"], 1e-9)
    print(f"{m['metric']:<12}{m['score']:>8.3f}{m['seconds']:>9.1f}{m['images']:>11,}"
          f"{m['encode_seconds']:>12.1f}{rate:>10,.0f}{m['seconds'] - m['encode_seconds']:>9.1f}")


def print_dci_agreement(out, s):
  print(f"\nDCI of the same codes with each importance (published sample sizes x "
        f"{s.metric_scale}), {out['device']}")
  print(f"{'model':<48}{'importance':>10}{'D':>7}{'C':>7}{'I test':>8}{'seconds':>9}")
  for r in out["dci_agreement"]:
    print(f"{r['model'][-48:]:<48}{r['importance']:>10}{r['disentanglement']:>7.3f}"
          f"{r['completeness']:>7.3f}{r['informativeness_test']:>8.3f}{r['seconds']:>9.1f}")


def print_metrics(out, s):
  print(f"\nDisentanglement metrics, published sample sizes x {s.metric_scale}, "
        f"{out['device']}: ours (first call compiles) vs the numpy/scikit-learn reference")
  print(f"{'metric':<18}{'ours s':>9}{'1st call s':>11}{'reference s':>13}{'speed-up':>10}"
        f"{'score':>8}{'ref score':>10}")
  for r in out["metrics"]:
    print(f"{r['metric']:<18}{r['ours_seconds']:>9.3f}{r['ours_first_seconds']:>11.2f}"
          f"{r['reference_seconds']:>13.2f}{r['speedup']:>9.1f}x{r['ours_score']:>8.3f}"
          f"{r['reference_score']:>10.3f}")


# The order of the tables; training prints only when it has rows.
def print_startup(out, s):
  del s
  print("\nStartup and shutdown of a run (seconds, fresh processes; min-max over repeats)")
  print(f"{'job':<26}{'code':<30}{'to first step':>16}{'after last step':>18}{'total':>15}")

  def cell(runs, key):
    lo, hi = span([r[key] for r in runs])
    return f"{lo:.1f}" if lo == hi else f"{lo:.1f}-{hi:.1f}"
  for job, codes in out["startup"].items():
    for label, runs in codes.items():
      print(f"{job:<26}{label:<30}{cell(runs, 'to_first_step'):>16}"
            f"{cell(runs, 'after_last_step'):>18}{cell(runs, 'total'):>15}")


TABLES = (("training", print_training), ("iwae_eval", print_iwae_eval),
          ("generation", print_generation), ("scaling", print_scaling),
          ("sweep", print_sweep), ("methods", print_methods), ("priors", print_priors),
          ("vs_torch", print_vs_torch),
          ("streaming", print_streaming), ("scoring", print_scoring),
          ("dci_agreement", print_dci_agreement), ("metrics", print_metrics),
          ("startup", print_startup))


def print_tables(out: dict, settings) -> None:
  """Every table whose section ``out`` has (``settings``: the CLI's)."""
  for section, print_table in TABLES:
    if out.get(section):
      print_table(out, settings)
