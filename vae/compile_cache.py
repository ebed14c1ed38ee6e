"""JAX's persistent compilation cache, for runs that start fast.

A run compiles the same programs every time it starts (parameter setup, the
training step, the evaluation passes, the figures' encode and decode): on 2
CPU cores that is most of a short run's startup, e.g. about 10 s for the conv
model's parameter setup alone. With the cache, a program compiled once is
read back from disk by every later process (1 s instead of 10 for that
setup). The results are the same programs, so the numbers are identical.

Like ``vae.allocator.tune()``, it is opt-in: ``import vae`` changes nothing;
the console scripts (``vae-train``, ``vae-evaluate``, ``vae-sweep``,
``vae-study``) call ``enable()`` first; in your own script call it before
the first computation. The folder is ``$VAE_COMPILATION_CACHE``, else
``$XDG_CACHE_HOME/vae-jax/xla`` (``~/.cache/vae-jax/xla``);
``VAE_COMPILATION_CACHE=0`` turns it off. JAX keys each entry by the
program, the compile options, the backend and the JAX version, so a stale
entry is never used. Each entry is one compiled program (from kilobytes to a
few MB); the folder is not pruned (JAX's size bound needs the ``filelock``
package), and can be deleted at any time. An entry cut short (a process
killed while writing it) is not used: JAX warns and compiles the program.

The tests use a cache of their own per test run (``tests/conftest.py``): the
suite compiles the same small programs in many tests, and reads them back.
"""

from __future__ import annotations

import os

ENV = "VAE_COMPILATION_CACHE"
# Programs that compile faster than this are not worth a disk round trip.
MIN_COMPILE_SECONDS = 0.5
_enabled: str | None = None


def default_dir() -> str:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "vae-jax", "xla")


def enable(path: str | None = None,
           min_compile_seconds: float = MIN_COMPILE_SECONDS) -> str | None:
  """Turns the cache on (once) for programs that take at least
  ``min_compile_seconds`` to compile; returns its folder, or None when it is
  off (``VAE_COMPILATION_CACHE=0``) or the folder cannot be created."""
  global _enabled
  if _enabled is not None:
    return _enabled
  path = path or os.environ.get(ENV) or default_dir()
  if path.strip().lower() in ("0", "off", "false", "none"):
    return None
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return None                     # a read-only home: run without it
  import jax
  jax.config.update("jax_compilation_cache_dir", path)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_seconds))
  _enabled = path
  return path


def enabled() -> str | None:
  """The cache folder in use, or None."""
  return _enabled
