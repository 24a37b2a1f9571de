"""The simulate flow: a reference with several contigs and reads with known origin.

Run it as ``python -m flows.simulate --output DIR [--reads 5000 --seed 42 ...]``.
"""

from __future__ import annotations

import sys

from prefect import flow

from flows.params import SimulateParams, parse_cli, quiet_exit
from tasks.simulate import simulate_data


@flow(name="simulate-reads")
def simulate(params: SimulateParams) -> dict:
    """Write reference.fa and reads.fq(.gz); read names carry their true origin."""
    return simulate_data(params.output, **params.model_dump(exclude={"output"}))


def main(argv: list[str] | None = None) -> int:
    paths = simulate(parse_cli(SimulateParams, argv, "python -m flows.simulate"))
    quiet_exit()
    print(f"reference: {paths['reference']}\nreads:     {paths['reads']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
