"""The benchmark report: tables (markdown and CSV) from the recorded measurements. Pure."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.cost import ANCHOR_USD_PER_30X, READS_PER_30X_HUMAN

HEADLINE = ("configuration", "varied", "status", "reads", "wall_s", "work_s", "orchestration_pct",
            "reads_per_s", "align_gcups", "cpu_s", "peak_rss_mib", "correct_pct")
STAGES = ("configuration", "stage", "wall_s", "cpu_s", "peak_rss_mib", "reads_per_s", "mb_per_s", "gcups")
COST = ("instance", "vcpus", "gpus", "usd_per_hour", "kernel", "seconds_per_m_reads",
        "usd_per_m_reads", "usd_per_30x_human", "pareto", "note")


def _r(x, nd=2):
    return None if x is None else round(float(x), nd)


def headline_rows(records: list[dict]) -> list[dict]:
    rows = []
    for r in records:
        row = dict.fromkeys(HEADLINE)
        row.update(configuration=r["config"]["label"], varied=r["varied"], status=r["status"])
        if r["status"] == "measured":
            row.update(reads=r["reads"], wall_s=_r(r["wall_s"]), work_s=_r(r["work_s"]),
                       orchestration_pct=_r(100 * r["orchestration_s"] / r["wall_s"], 1),
                       reads_per_s=_r(r["reads_per_s"], 0), align_gcups=_r(r["kernel"]["gcups"], 3),
                       cpu_s=_r(r["cpu_s"]), peak_rss_mib=_r(r["peak_rss_mib"], 0),
                       correct_pct=_r(100 * r["accuracy"], 2) if r["accuracy"] is not None else None)
        rows.append(row)
    return rows


def stage_rows(records: list[dict]) -> list[dict]:
    rows = []
    for r in records:
        for s in r.get("stages", []):
            rows.append({"configuration": r["config"]["label"], "stage": s["stage"], "wall_s": _r(s["wall_s"], 3),
                         "cpu_s": _r(s["cpu_s"], 3), "peak_rss_mib": _r(s["peak_rss_mib"], 0),
                         "reads_per_s": _r(s["reads_per_s"], 0), "mb_per_s": _r(s.get("mb_per_s")),
                         "gcups": _r(s.get("gcups"), 3)})
    return rows


def scaling_fit(records: list[dict]) -> dict | None:
    """Least-squares line wall = a + b * reads over the base and the data-size runs."""
    pts = [(r["reads"], r["wall_s"], r["work_s"]) for r in records
           if r["status"] == "measured" and r["varied"] in ("base", "scale")]
    if len({p[0] for p in pts}) < 2:
        return None
    reads, wall, work = (np.array(c, dtype=float) for c in zip(*sorted(pts)))
    b, a = np.polyfit(reads, wall, 1)
    bw, aw = np.polyfit(reads, work, 1)
    return {"points": [{"reads": int(n), "wall_s": _r(w), "work_s": _r(k), "orchestration_pct": _r(100 * (w - k) / w, 1)}
                       for n, w, k in zip(reads, wall, work)],
            "intercept_s": float(a), "s_per_million_reads": float(b * 1e6),
            "work_intercept_s": float(aw), "work_s_per_million_reads": float(bw * 1e6)}


def frame(rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    """Rows as a frame of these columns, values kept as recorded (an int stays an int, None empty)."""
    return pd.DataFrame(rows, columns=list(columns), dtype=object)


def table_md(rows: list[dict], columns: tuple[str, ...]) -> str:
    """A markdown table; ints with thousands separators, None as an empty cell."""
    def cell(v):
        return "" if v is None else (f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v))

    return frame(rows, columns).map(cell).to_markdown(index=False, disable_numparse=True) + "\n"


def csv_text(rows: list[dict], columns: tuple[str, ...]) -> str:
    return frame(rows, columns).to_csv(index=False, lineterminator="\n")


def parse_md_table(text: str, heading: str) -> list[dict]:
    """The first table after ``heading`` in a markdown report, as rows of strings."""
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    header, body = rows[0], rows[2:]
    return [dict(zip(header, r)) for r in body]


def render_report(meta: dict, records: list[dict], costs: list[dict], fit: dict | None, gpu: list[dict],
                  assumptions: str, plots: dict[str, str]) -> str:
    """The whole report.md: headline table first, then stages, scaling, GPU, cost, plots."""
    measured = [r for r in records if r["status"] == "measured"]
    out = [f"# helixflow benchmark\n\n{meta['when']} on {meta['machine']}. Data: {meta['data']}.\n",
           "Every number below was measured in this run, except the GPU kernel rows taken from "
           "`bench/measured/` (device and date named) and the cost columns, which are projections "
           "(assumptions under *Cost*).\n"]
    out.append("\n## Headline\n\n" + table_md(headline_rows(records), HEADLINE))
    out.append("\n`wall_s`: the whole align-reads run; `work_s`: its task runs less the align job's launch; "
               "`orchestration_pct`: the rest (Prefect, Ray start and stop, job launch or Slurm queue). "
               "`align_gcups`: DP cells over the ranks' compute time (scoring, traceback and reading the "
               "staged files); the kernel alone is faster, see `make bench-kernel`.\n")
    if plots.get("stages"):
        out.append(f"\n![stage time per configuration]({plots['stages']})\n")
    out.append("\n## Stages\n\n" + table_md(stage_rows(measured), STAGES))
    out.append("\n## Scaling\n\n")
    if fit:
        out.append(f"With reads: wall = {fit['intercept_s']:.2f} s + {fit['s_per_million_reads']:.1f} s per million "
                   f"reads (work alone: {fit['work_intercept_s']:.2f} s + {fit['work_s_per_million_reads']:.1f} s "
                   "per million). The intercept is the fixed cost of a run: Prefect, Ray start, job launch.\n\n")
        out.append(table_md(fit["points"], ("reads", "wall_s", "work_s", "orchestration_pct")))
    else:
        out.append("Not fitted: fewer than two data sizes measured.\n")
    ranks = sorted((r["config"]["ranks"], r) for r in measured if r["varied"] in ("base", "ranks"))
    if len(ranks) > 1:
        out.append("\nWith ranks:\n\n" + table_md(
            [{"ranks": n, "align_gcups": _r(r["kernel"]["gcups"], 3), "align_s": _r(next(
                s["wall_s"] for s in r["stages"] if s["stage"] == "align")), "reads_per_s": _r(r["reads_per_s"], 0)}
             for n, r in ranks], ("ranks", "align_gcups", "align_s", "reads_per_s")))
    if plots.get("throughput"):
        out.append(f"\n![throughput vs ranks]({plots['throughput']})\n")
    out.append("\n## The cuda kernel\n\n")
    local = [r for r in records if r["config"]["kernel"] == "cuda"]
    for r in local:
        out.append(f"- on this machine, `{r['config']['label']}`: {r['status']}\n")
    for g in gpu:
        out.append(f"- recorded on **{g['device']}** ({g['measured_at']}, `python -m bench device`): "
                   f"{g['cuda_gcups']:.1f} GCUPS on {g['pairs']:,} pairs of 150 x 250 (transfers included); "
                   f"the vectorized CPU kernel on that machine's {g['cpu_threads']} threads: "
                   f"{g['cpu_vectorized_gcups']:.1f} GCUPS in the same run; exact against the scalar kernel on "
                   f"{g['pairs_checked']:,} pairs ({g['mismatching_outputs']} mismatches)\n")
    if not gpu and not local:
        out.append("not measured: no GPU\n")
    out.append("\n## Cost\n\n" + assumptions.strip() + "\n\n" + table_md(costs, COST))
    out.append(f"\nA 30x human genome is {READS_PER_30X_HUMAN / 1e6:.0f}M reads of 150 bp. The published anchor: "
               f"about ${ANCHOR_USD_PER_30X} per 30x sample for a GPU pipeline on AWS spot instances "
               "(on-demand prices above).\n")
    if plots.get("pareto"):
        out.append(f"\n![cost vs time]({plots['pareto']})\n")
    out.append("\nThe same tables: `configs.csv`, `stages.csv`, `cost.csv`; the raw measurements: "
               "`measurements.json`.\n")
    return "".join(out)
