"""Every set of choices, declared once as a ``Literal``: the flows' parameter models, the
CLIs' argparse choices and the code that dispatches on them all derive from these."""

from __future__ import annotations

from typing import Literal, get_args

Kernel = Literal["cpu", "scalar", "cuda"]  # vectorized int16 lanes, the int32 reference, the GPU
Backend = Literal["auto", "local", "slurm"]  # auto: slurm when sinfo answers, else local mpiexec
Launcher = Literal["mpiexec", "srun"]
JobMode = Literal["mpi", "array"]  # one MPI job of N ranks, or a Slurm job array of N tasks

KERNELS: tuple[str, ...] = get_args(Kernel)
BACKENDS: tuple[str, ...] = get_args(Backend)
LAUNCHERS: tuple[str, ...] = get_args(Launcher)
JOB_MODES: tuple[str, ...] = get_args(JobMode)


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``; else a ValueError naming them."""
    if value not in choices:
        raise ValueError(f"{what} {value!r} is not one of {', '.join(choices)}")
    return value
