"""Host memory allocation settings that XLA:CPU needs to run at full speed.

XLA:CPU allocates each program's temporary buffers (and its results) with
``malloc`` on its worker threads. glibc serves a request above its mmap
threshold (at most 32 MiB), and any request above 64 MiB made from a thread
other than the main one, with a fresh ``mmap``, and returns it with ``munmap``
when freed. Such a buffer is then faulted in page by page on every call: a
conv VAE training step at batch 64 touches an 85 MiB temporary, 20,737 page
faults and ~35 ms of system time per call on this project's 2-core machine,
more than its arithmetic (measured with ``getrusage`` and ``strace`` in the
closing note of the conv-speed issue). The settings below keep freed memory in
the process for reuse: one arena for all threads (``M_ARENA_MAX = 1``), no
``mmap`` for large blocks (``M_MMAP_MAX = 0``), and no trimming of the heap.
The price: the process keeps its peak heap size until it exits.

``tune()`` is called by ``import vae`` (before JAX starts its threads, which
is when it takes full effect); set ``VAE_TUNE_MALLOC=0`` to leave the
allocator alone. It does nothing outside glibc (macOS, musl, Windows).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -2, -4, -8
_applied = False


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
