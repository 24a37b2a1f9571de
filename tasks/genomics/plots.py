"""PNG plots for artifacts and reports (matplotlib, no display needed)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from hpc.files import atomic_write_bytes


def mapq_accuracy_png(by_mapq: list[dict], title: str) -> bytes:
    """Bar chart: reads per MAPQ bin, the correctly placed share filled in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [row["mapq"] for row in by_mapq]
    reads = [row["reads"] for row in by_mapq]
    correct = [row["correct"] for row in by_mapq]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.bar(labels, reads, color="#d0d7de", label="reads")
    ax.bar(labels, correct, color="#2da44e", label="correctly placed")
    ax.set_xlabel("MAPQ")
    ax.set_ylabel("reads")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def write_png(path: Path, png: bytes) -> str:
    """Write the PNG atomically; return it as a markdown image embedded as a data URI."""
    atomic_write_bytes(path, png)
    return f"![{path.stem}](data:image/png;base64,{base64.b64encode(png).decode()})"


def qc_png(qc: dict, title: str) -> bytes:
    """Two panels: reads per MAPQ bin, and (pairs) the insert-size histogram."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inserts = qc.get("insert_size")
    fig, axes = plt.subplots(1, 2 if inserts else 1, figsize=(9 if inserts else 5, 3.2), dpi=100, squeeze=False)
    ax = axes[0][0]
    ax.bar([r["mapq"] for r in qc["mapq"]], [r["reads"] for r in qc["mapq"]], color="#0969da")
    ax.set_xlabel("MAPQ (primary alignments)")
    ax.set_ylabel("reads")
    if inserts:
        ax = axes[0][1]
        ax.bar([a for a, _ in inserts["histogram"]], [k for _, k in inserts["histogram"]], width=inserts["bin_bp"],
               align="edge", color="#8250df")
        ax.set_xlabel(f"insert size, bp (median {inserts['median']})")
        ax.set_ylabel("proper pairs")
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
