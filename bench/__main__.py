"""Every benchmark behind one entry point: ``python -m bench NAME [options]``.

=========  =======================================================================
kernel     Smith-Waterman GCUPS: scalar, vectorized, MPI ranks, parasail (``make bench-kernel``)
mapping    index + candidates + kernel + collect on a simulated genome, minimap2 beside it
           (``make bench-mapping``)
data       10M reads through ingest + Ray encode + stage; S3 round trips on loopback
           (``make bench-data``)
pipeline   the align-reads flow over a settings grid, with cost (``make bench``)
device     the CUDA kernel on a GPU machine, exactness and GCUPS (needs only numpy and numba)
soak       the same 2M reads aligned three times from scratch: every run exits 0, outputs identical
           (``make soak``)
scale      index and map synthetic genomes of 100 Mbp to 1 Gbp, minimap2 -x sr beside it
           (``make bench-scale``)
throughput helixflow end to end beside minimap2 on 2M and 200k E. coli reads: wall, seeding +
           alignment, peak RSS of every process, accuracy, cost per 30x (``make bench-throughput``)
chaos      one fault a row (killed flow, crashed rank, edited manifest, two runs in one folder, bad
           input), then the user's rerun: nothing lost, output identical to a clean run (``make chaos``)
=========  =======================================================================
"""

from __future__ import annotations

import importlib
import sys

ENTRIES = {"kernel": "bench.kernel", "mapping": "bench.mapping", "data": "bench.data",
           "pipeline": "flows.benchmark", "device": "bench.device", "soak": "bench.soak",
           "chaos": "bench.chaos", "scale": "bench.scale",
           "throughput": "bench.throughput"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ENTRIES:
        print(__doc__, file=sys.stderr)
        print(f"python -m bench: expected one of {', '.join(ENTRIES)} as the first argument", file=sys.stderr)
        return 2
    return importlib.import_module(ENTRIES[argv[0]]).main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
