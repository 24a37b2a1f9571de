"""The benchmark's settings grid: one base configuration and one factor varied at a time."""

from __future__ import annotations

from dataclasses import asdict, dataclass

FACTORS = ("scale", "shard_size", "ray_workers", "ranks", "kernel", "backend")


@dataclass(frozen=True)
class Config:
    scale: int  # data size as a multiple of the base read count
    shard_size: int
    ray_workers: int
    ranks: int
    kernel: str
    backend: str

    @property
    def label(self) -> str:
        return (f"x{self.scale} shard={self.shard_size} ray={self.ray_workers} ranks={self.ranks} "
                f"{self.kernel} {self.backend}")

    def as_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


def one_factor_grid(base: Config, values: dict[str, list]) -> list[tuple[Config, str]]:
    """The base, then the base with one factor changed per value: (config, factor varied).
    Duplicates are kept once, in the order first met."""
    out: list[tuple[Config, str]] = [(base, "base")]
    seen = {base}
    for factor in FACTORS:
        for value in values.get(factor, []):
            config = Config(**{**asdict(base), factor: value})
            if config not in seen:
                seen.add(config)
                out.append((config, factor))
    return out
