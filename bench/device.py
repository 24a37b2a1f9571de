"""GPU kernel check and benchmark: ``python -m bench device --json OUT.json``.

Run where a GPU is (no Prefect, Ray or parasail needed: numpy and numba alone). It names
the device, checks the ``cuda`` kernel against the scalar one on varied pairs (N bases,
several scorings), then times ``cuda`` (host-to-host, transfers included) and the
vectorized CPU kernel on all of this machine's cores on the same pairs in the same run.
The JSON is what ``flows.benchmark`` reads for the report's ``cuda`` row.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone

import numpy as np

from bench.kernel import workload
from hpc.kernels.dispatch import score_batch
from hpc.kernels.scoring import Scoring

SCORINGS = [Scoring(), Scoring(1, -1, -2, -1), Scoring(3, -2, -5, -2)]


def varied_pairs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    q_len = rng.integers(1, 300, n)
    r_len = rng.integers(1, 400, n)
    qs = rng.integers(0, 5, int(q_len.sum())).astype(np.uint8)
    rs = rng.integers(0, 5, int(r_len.sum())).astype(np.uint8)
    return qs, np.cumsum(q_len) - q_len, q_len, rs, np.cumsum(r_len) - r_len, r_len


def exactness(pairs: int) -> dict:
    data = varied_pairs(pairs, 7)
    sim = workload(pairs, 150, 250, 8)
    bad = 0
    for sc in SCORINGS:
        args = (sc.match, sc.mismatch, sc.gap_open, sc.gap_extend)
        for d in (data, sim):
            want = score_batch("scalar")(*d, *args)
            got = score_batch("cuda")(*d, *args)
            bad += sum(int((w != g).sum()) for w, g in zip(want, got))
    return {"pairs_checked": 2 * pairs * len(SCORINGS), "mismatching_outputs": bad}


def gcups(kernel: str, data, repeats: int) -> float:
    sc = Scoring()
    args = (sc.match, sc.mismatch, sc.gap_open, sc.gap_extend)
    fn = score_batch(kernel)
    fn(*(a[:256] if i in (1, 2, 4, 5) else a for i, a in enumerate(data)), *args)  # compile, warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*data, *args)
        best = min(best, time.perf_counter() - t0)
    return float((data[2] * data[5]).sum()) / best / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench device", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--check-pairs", type=int, default=2000)
    parser.add_argument("--json", type=str, required=True)
    args = parser.parse_args(argv)
    from numba import cuda

    device = cuda.get_current_device()
    name = getattr(device, "name", "CUDA simulator (no GPU)")
    name = name.decode() if isinstance(name, bytes) else str(name)
    result = {"device": name, "host_cpus": os.cpu_count(), "python": platform.python_version(),
              "numba": __import__("numba").__version__,
              "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rows": []}
    result.update(exactness(args.check_pairs))
    print(f"device: {name}; exactness vs scalar: {result['mismatching_outputs']} mismatches in "
          f"{result['pairs_checked']} pairs", flush=True)
    for pairs in args.pairs:
        data = workload(pairs, 150, 250, 1)
        cuda_g = gcups("cuda", data, 3)
        cpu_g = gcups("cpu", data, 2)
        row = {"pairs": pairs, "read_len": 150, "window_len": 250, "cuda_gcups": cuda_g,
               "cpu_vectorized_gcups": cpu_g, "cpu_threads": os.cpu_count()}
        result["rows"].append(row)
        print(f"{pairs:>9} pairs 150x250: cuda {cuda_g:8.2f} GCUPS (transfers included)   "
              f"cpu vectorized on {os.cpu_count()} threads {cpu_g:8.2f} GCUPS   ratio {cuda_g / cpu_g:.2f}x", flush=True)
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=2)
    return 0 if result["mismatching_outputs"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
