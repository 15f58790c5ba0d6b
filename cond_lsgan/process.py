"""Process-wide settings, applied only by the programs that own the process.

The `cond-lsgan` command line (and the benchmark scripts, which time what it runs) call
these; library functions never do, so a notebook that builds a `TrainingStep` keeps its
own allocator behaviour.
"""

from __future__ import annotations

import ctypes


def keep_freed_memory() -> None:
    """Let glibc serve large blocks from its heap and keep freed memory for reuse.

    By default glibc serves large blocks (above a threshold of 128 KiB that grows to at
    most 32 MiB) with fresh mmap pages and unmaps them on free, so every training step's
    activations and gradients come back as new pages the kernel must fault in and zero.
    Turning malloc's mmap off and raising the trim threshold (what PyTorch's CPU tuning
    guide gets from jemalloc or tcmalloc) keeps them in the heap. mmap goes off
    altogether, not just above a higher threshold, because the threshold is capped at
    32 MiB and paper28's largest gradient (D's FC layer) is larger. This holds for blocks
    the main thread allocates (training's, backward included); other threads' arenas are
    mmap'd heaps whose larger blocks are still mapped. The price: memory freed below the
    top of the heap stays with the process until it ends. A no-op where libc is not glibc.
    docs/results.md has the measured effect.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
    libc.mallopt(m_mmap_max, 0)  # the main arena serves no block by mmap: all come from its heap
    libc.mallopt(m_trim_threshold, 1 << 30)
