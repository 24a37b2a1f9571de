"""The benchmark report's plots as PNG bytes (matplotlib, Agg)."""

from __future__ import annotations

import io


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    _plt().close(fig)
    return buf.getvalue()


def stage_bars_png(rows: list[dict]) -> bytes:
    """Stacked horizontal bars: each configuration's stage wall times plus orchestration."""
    plt = _plt()
    stages = []
    for r in rows:
        for s in r["stages"]:
            if s["stage"] not in stages:
                stages.append(s["stage"])
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 2.2), dpi=100)
    labels = [r["config"]["label"] for r in rows]
    left = [0.0] * len(rows)
    colors = plt.get_cmap("tab10")
    for k, name in enumerate(stages + ["orchestration"]):
        widths = [next((s["wall_s"] for s in r["stages"] if s["stage"] == name), 0.0) if name != "orchestration"
                  else r["orchestration_s"] - _launch(r) for r in rows]
        ax.barh(labels, widths, left=left, color=colors(k % 10) if name != "orchestration" else "#bbbbbb",
                label=name)
        left = [a + b for a, b in zip(left, widths)]
    ax.set_xlabel("seconds (wall)")
    ax.invert_yaxis()
    ax.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.45, -0.14))
    ax.set_title("Where the time goes, per configuration")
    return _png(fig)


def _launch(row: dict) -> float:
    """The part of orchestration inside the align task (drawn within its bar)."""
    align = next((s for s in row["stages"] if s["stage"] == "align"), None)
    return max(align["wall_s"] - row["kernel"]["seconds"], 0.0) if align else 0.0


def throughput_png(ranks: list[int], gcups: list[float], reads_per_s: list[float]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=100)
    ax.plot(ranks, gcups, "o-", color="#1f77b4", label="align GCUPS (all ranks)")
    ax.set_xlabel("MPI ranks")
    ax.set_ylabel("GCUPS")
    ax.set_xticks(ranks)
    ax2 = ax.twinx()
    ax2.plot(ranks, reads_per_s, "s--", color="#ff7f0e", label="reads/s (whole run)")
    ax2.set_ylabel("reads/s")
    fig.legend(loc="upper left", fontsize=8)
    ax.set_title("Throughput vs ranks")
    return _png(fig)


def pareto_png(points: list[dict], front: list[dict]) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    pts = [p for p in points if p["seconds_per_m_reads"] is not None]
    ax.scatter([p["seconds_per_m_reads"] for p in pts], [p["usd_per_m_reads"] for p in pts], s=14,
               color="#999999", label="configuration x instance")
    ax.plot([p["seconds_per_m_reads"] for p in front], [p["usd_per_m_reads"] for p in front], "o-",
            color="#d62728", label="Pareto front")
    for p in front:
        ax.annotate(f"{p['instance']} ({p['kernel']})", (p["seconds_per_m_reads"], p["usd_per_m_reads"]),
                    fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("seconds per million reads (projected)")
    ax.set_ylabel("USD per million reads (projected)")
    ax.legend(fontsize=8)
    ax.set_title("Cost vs time")
    return _png(fig)


def scale_png(rows: list[dict]) -> bytes:
    """Index build time and peak memory against genome size, helixflow beside minimap2."""
    plt = _plt()
    rows = [r for r in rows if r.get("kind", "repeats") == "repeats"] or rows
    size = [r["genome_mbp"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
    for ax, ours, theirs, label in ((left, "index_s", "mm2_index_s", "index build, s"),
                                    (right, "index_rss_gib", "mm2_index_rss_gib", "index build peak RSS, GiB")):
        ax.plot(size, [r[ours] for r in rows], "o-", label="helixflow")
        ax.plot(size, [r[theirs] for r in rows], "s--", label="minimap2 -x sr")
        ax.set_xscale("log")
        ax.set_xlabel("genome, Mbp")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    fig.suptitle("Reference index against genome size (same machine, same run)")
    return _png(fig)
