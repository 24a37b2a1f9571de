"""Collect task: merge rank outputs into the sample's PAF, sorted BAM and summary (QC,
accuracy against truth), with artifacts (:mod:`tasks.genomics.merge` does the work)."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from hpc.files import atomic_write_text
from hpc.manifest import StagedRun
from hpc.run_folder import AlignOutputs
from tasks.genomics.merge import (  # noqa: F401 - the merge's names, where callers found them
    ReconciliationError,
    SampleOutputs,
    check_every_read_once,
    load_rank_columns,
    write_results,
)
from tasks.genomics.plots import mapq_accuracy_png, qc_png, write_png
from tasks.runtime.options import IO_TASK
from tasks.runtime.stages import rank_rows

QC_ROWS = ("reads", "records", "mapped", "primary_mapped", "secondary", "paired", "properly_paired",
           "with_itself_and_mate_mapped", "singletons", "mate_on_different_contig")


def artifact_key(stem: str) -> str:
    """The part of a sample's artifact keys after ``qc-``, ``stages-`` ...: its file stem as
    Prefect's keys allow (lower case, dashes, at most 40 characters)."""
    return stem.lower().replace("_", "-").replace(".", "-")[:40]


@task(name="collect", **IO_TASK)
def collect_results(staged: StagedRun, outputs: AlignOutputs, output_dir: str,
                    spec: SampleOutputs | None = None) -> dict:
    """:func:`write_results`, with the summary, QC (flagstat-style counts, MAPQ and insert
    sizes, plotted), accuracy and the output links as artifacts."""
    spec = spec or SampleOutputs()
    summary = write_results(staged.manifest, outputs, output_dir, staged=staged, spec=spec)
    out, paf, accuracy, qc = Path(summary["summary"]).parent, Path(summary["paf"]), summary["accuracy"], summary["qc"]
    stem = spec.file_stem
    get_run_logger().info("sample %s: %d of %d reads mapped; %s", spec.sample, summary["mapped"], summary["reads"],
                          summary["bam"] or paf)
    key = artifact_key(stem)
    headline = {"sample": spec.sample, **{k: qc[k] for k in QC_ROWS if k in qc}}
    if qc.get("insert_size"):
        headline.update(insert_median=qc["insert_size"]["median"], insert_mean=qc["insert_size"]["mean"])
    plots = "\n" + write_png(out / f"{stem}.qc.png", qc_png(qc, f"{spec.sample}: {qc['primary_mapped']:,} of "
                                                              f"{qc['reads']:,} reads mapped")) + "\n"
    if accuracy:
        headline["fraction_correct"] = round(accuracy["fraction_correct"], 4)
        create_table_artifact(key=f"accuracy-by-mapq-{key}", table=accuracy["by_mapq"],
                              description=f"{spec.sample}: placement accuracy by MAPQ bin (paftools mapeval rule)")
        png = mapq_accuracy_png(accuracy["by_mapq"], f"{accuracy['fraction_correct']:.2%} of reads placed correctly")
        plots += "\n" + write_png(out / f"{stem}.accuracy_by_mapq.png", png) + "\n"
    create_table_artifact(key=f"qc-{key}", table=[headline], description=f"{spec.sample}: QC (samtools flagstat's counts)")
    links = [("PAF", paf)] + ([("BAM", Path(summary["bam"])), ("BAM index", Path(summary["bam"] + ".bai"))]
                              if summary["bam"] else []) + ([("SAM", Path(summary["sam"]))] if summary["sam"] else [])
    links.append(("summary", Path(summary["summary"])))
    create_markdown_artifact(
        key=f"outputs-{key}",
        markdown=f"### {spec.sample}\n\n" + "".join(f"- {label}: [{p.name}]({p.as_uri()})\n" for label, p in links)
        + plots,
        description=f"{spec.sample}: where the results are",
    )
    return summary


@task(name="record-stages", **IO_TASK)
def record_stages(summary: dict, stages: list[dict], outputs: AlignOutputs) -> dict:
    """Add the sample's stage times and peak memory (the flow's rows, then one per align
    rank) to its summary JSON, rewritten atomically, and show them as an artifact."""
    rows = stages + rank_rows([outputs.marker(r) for r in range(outputs.ranks)])
    summary = {**summary, "stages": rows}
    atomic_write_text(Path(summary["summary"]), json.dumps(summary, indent=2))
    key = artifact_key(Path(summary["summary"]).name.removesuffix(".summary.json"))
    total = sum(r["seconds"] for r in stages)
    create_table_artifact(key=f"stages-{key}", table=rows,
                          description=f"{summary['sample']}: seconds and peak RSS per stage ({total:.1f} s in all)")
    return summary
