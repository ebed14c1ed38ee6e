"""Where a result was measured: host, CPU model, CPUs usable, JAX and its
backend (recorded in every results file)."""

from __future__ import annotations

import os
import platform
from typing import Any


def machine() -> dict[str, Any]:
  """Where a run trained: host, CPU model, CPUs usable, JAX and its backend."""
  import jax
  cpu = platform.processor()
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
  except OSError:
    pass
  usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
  return {"host": platform.node(), "cpu": cpu, "cpu_count": os.cpu_count(),
          "cpus_used": usable, "jax": jax.__version__, "backend": jax.default_backend(),
          "device": jax.devices()[0].device_kind, "python": platform.python_version()}
