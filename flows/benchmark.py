"""The kernel-benchmark flow: GCUPS of our kernels and parasail on the same pairs.

Run it as ``python -m flows.benchmark [--pairs 2000]``; ``make bench-kernel`` prints the
full table with the default 20,000 pairs.
"""

from __future__ import annotations

import sys

from prefect import flow, task
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, ConfigDict, Field

from flows.params import parse_cli
from hpc.bench import measure, parse_args


class BenchmarkParams(BaseModel):
    """Parameters of the kernel-benchmark flow."""

    model_config = ConfigDict(extra="forbid")
    pairs: int = Field(20_000, ge=64, description="read x window pairs")
    read_length: int = Field(150, ge=16, le=1000)
    window_length: int = Field(250, ge=16, le=2000)


@task(name="measure-kernels")
def measure_kernels(params: BenchmarkParams) -> list[dict]:
    args = parse_args(["--pairs", str(params.pairs), "--read-len", str(params.read_length),
                       "--window-len", str(params.window_length), "--rss-pairs", "0"])
    rows = measure(args)
    table = [{"kernel": name, "gcups": round(g, 3), "x_parasail_16": round(g / rows[0][1], 2)} for name, g in rows]
    create_table_artifact(key="kernel-benchmark", table=table,
                          description=f"GCUPS on {params.pairs} pairs of {params.read_length} x {params.window_length}")
    return table


@flow(name="kernel-benchmark")
def kernel_benchmark(params: BenchmarkParams) -> list[dict]:
    return measure_kernels(params)


def main(argv: list[str] | None = None) -> int:
    for row in kernel_benchmark(parse_cli(BenchmarkParams, argv, "python -m flows.benchmark")):
        print(f"{row['kernel']:52s} {row['gcups']:8.3f} {row['x_parasail_16']:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
