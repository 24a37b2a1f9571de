"""A process's allocator settings: with a fixed mmap threshold, freed large arrays go back; freed heap
pages go back when released."""

import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent("""
    import re, sys
    import numpy as np
    from hpc.process import fixed_mmap_threshold

    if sys.argv[1] == "fixed" and not fixed_mmap_threshold():
        sys.exit(3)

    def anon():
        return int(re.search(r"RssAnon:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) >> 10

    big = np.ones(30 << 20, np.uint8)
    del big  # glibc's own threshold rises past 30 MiB: arrays below it come from its heap now
    keep, before = [], anon()
    for i in range(40):  # a shard's arrays, each a little larger, freed; something small stays after each
        a = np.ones((4 << 20) + i * (128 << 10), np.uint8)
        keep.append(np.ones(1000, np.uint8))
        del a
    print(anon() - before)
""")


def kept_mib(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True)
    if done.returncode == 3:
        pytest.skip("the C library is not glibc")
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_freed_arrays_go_back_to_the_system_with_a_fixed_threshold():
    assert kept_mib("fixed") < 2
    assert kept_mib("glibc's own") >= 4  # what the fixed threshold saves (here: the rise it stops)


TRIM = textwrap.dedent("""
    import re
    import numpy as np
    from hpc.process import fixed_mmap_threshold, release_free_memory

    def anon():
        return int(re.search(r"RssAnon:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) >> 10

    fixed_mmap_threshold()
    before, arrays, keep = anon(), [], []
    for i in range(200):  # arrays under the threshold, from the heap; after each a small one that stays
        arrays.append(np.ones(512 << 10, np.uint8))
        keep.append(np.ones(4096, np.uint8))
    del arrays
    held = anon() - before
    if not release_free_memory():
        raise SystemExit(3)
    print(held, anon() - before)
""")


def test_freed_heap_pages_under_a_small_array_that_stays_go_back_when_released():
    done = subprocess.run([sys.executable, "-c", TRIM], capture_output=True, text=True)
    if done.returncode == 3:
        pytest.skip("the C library is not glibc")
    assert done.returncode == 0, done.stderr
    held, released = map(int, done.stdout.split())
    assert held >= 80  # 100 MiB freed, kept by the heap below the small arrays
    assert released < 10
