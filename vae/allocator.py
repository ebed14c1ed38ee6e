"""Host memory allocation settings that XLA:CPU needs to run at full speed.

XLA:CPU allocates each program's temporary buffers (and its results) with
``malloc`` on its worker threads. glibc serves a request above its mmap
threshold (at most 32 MiB), and any request above 64 MiB made from a thread
other than the main one, with a fresh ``mmap``, and returns it with ``munmap``
when freed. Such a buffer is then faulted in page by page on every call: the
conv VAE's training step spends more time in those page faults than in its
arithmetic (README, "Why the CPU path looks as it does"). The settings below
keep freed memory in the process for reuse: one arena for all threads (``M_ARENA_MAX = 1``), no
``mmap`` for large blocks (``M_MMAP_MAX = 0``), and no trimming of the heap.
The price: the process keeps its peak heap size until it exits.

``import vae`` does not touch the allocator. ``tune()`` is opt-in: the
console scripts (``vae-train``, ``vae-evaluate``, ``vae-benchmark``,
``vae-sweep``, ``vae-study``) call it first; in your own script or notebook
call ``vae.allocator.tune()`` before the first JAX computation (it takes full
effect before JAX starts its CPU threads). ``VAE_TUNE_MALLOC=0`` makes it a
no-op. It does nothing outside glibc (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -2, -4, -8
_applied = False


def applied() -> bool:
  """Whether ``tune()`` has changed this process's allocator."""
  return _applied


def tune() -> bool:
  """Applies the settings once; returns whether they are in effect."""
  global _applied
  if _applied:
    return True
  if os.environ.get("VAE_TUNE_MALLOC", "1") == "0" or platform.system() != "Linux":
    return False
  if platform.libc_ver()[0] != "glibc":
    return False
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    ok = all(libc.mallopt(param, value) == 1 for param, value in (
        (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1),
        (_M_TOP_PAD, 64 << 20)))
  except (OSError, AttributeError):
    return False
  _applied = ok
  return ok
