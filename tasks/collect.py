"""Collect task: merge rank outputs into PAF, write the summary, score against truth."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from hpc.align_job import rank_output
from hpc.manifest import atomic_write_text, load_manifest, load_npz_verified
from tasks.encoding import EncodedShard, decode_sequences
from tasks.paf import Hit, evaluate, mapq_from_scores
from tasks.sam import sam_header, sam_record
from tasks.plots import mapq_accuracy_png, write_png
from tasks.task_options import IO_TASK


def hit_from_row(row: dict[str, str], qname: str, qlen: int, tname: str, tlen: int) -> Hit:
    """PAF record of one rank row; a reverse-strand row has its query span flipped to the read."""
    q_start, q_end = int(row["q_start"]), int(row["q_end"])
    reverse = row["strand"] == "1"
    if reverse:
        q_start, q_end = qlen - q_end, qlen - q_start
    wstart = int(row["wstart"])
    return Hit(
        qname=qname, qlen=qlen, qstart=q_start, qend=q_end, strand="-" if reverse else "+",
        tname=tname, tlen=tlen, tstart=wstart + int(row["r_start"]), tend=wstart + int(row["r_end"]),
        nmatch=int(row["nmatch"]), block=int(row["block"]),
        mapq=mapq_from_scores(int(row["score"]), int(row["second"])),
        score=int(row["score"]), nm=int(row["nm"]), cigar=row["cigar"],
    )


def write_results(manifest_path: Path, align_dir: Path, output_dir: str, ranks: int, sam: bool = False) -> dict:
    """Write ``alignments.paf`` (and ``alignments.sam`` when ``sam``) and ``summary.json`` under
    ``output_dir``; return the summary. Every input read is counted mapped or unmapped."""
    manifest = load_manifest(Path(manifest_path))
    root = Path(manifest_path).parent
    ref = load_npz_verified(root, manifest["reference"])
    tnames = [str(n) for n in ref["names"]]
    shards = [load_npz_verified(root, s) for s in manifest["shards"]]
    rows = []
    for r in range(ranks):
        with open(rank_output(align_dir, r), newline="") as fh:
            rows.extend(csv.DictReader(fh, delimiter="\t"))
    rows.sort(key=lambda row: (int(row["shard"]), int(row["read"])))
    hits = []
    for row in rows:
        shard = shards[int(row["shard"])]
        read, contig = int(row["read"]), int(row["contig"])
        hits.append(hit_from_row(row, str(shard["names"][read]), int(shard["lengths"][read]),
                                 tnames[contig], int(ref["lengths"][contig])))
    names = [str(n) for s in shards for n in s["names"]]

    out = Path(output_dir).resolve()
    paf = out / "alignments.paf"
    atomic_write_text(paf, "".join(h.paf_line() + "\n" for h in hits))
    if sam:
        by_name = {h.qname: h for h in hits}
        body = [sam_header(tnames, [int(x) for x in ref["lengths"]])]
        for shard in shards:
            codes = EncodedShard.from_arrays(shard)
            for name, seq in zip(codes.names, decode_sequences(codes)):
                body.append(sam_record(name, seq, by_name.get(name)))
        atomic_write_text(out / "alignments.sam", "".join(body))
    accuracy = evaluate(hits, names)
    summary = {
        "reads": len(names),
        "mapped": len(hits),
        "unmapped": len(names) - len(hits),
        "paf": str(paf),
        "sam": str(out / "alignments.sam") if sam else None,
        "summary": str(out / "summary.json"),
        "staging": str(root),
        "accuracy": accuracy,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary


@task(name="collect", **IO_TASK)
def collect_results(manifest_path: Path, align_dir: Path, output_dir: str, ranks: int, sam: bool = False) -> dict:
    """:func:`write_results`, with the summary, accuracy and a plot as artifacts."""
    summary = write_results(manifest_path, align_dir, output_dir, ranks, sam)
    out, paf, accuracy = Path(summary["summary"]).parent, Path(summary["paf"]), summary["accuracy"]
    get_run_logger().info("wrote %d alignments to %s", summary["mapped"], paf)

    headline = {"reads": summary["reads"], "mapped": summary["mapped"], "unmapped": summary["unmapped"]}
    plot = ""
    if accuracy:
        headline["fraction_correct"] = round(accuracy["fraction_correct"], 4)
        create_table_artifact(key="accuracy-by-mapq", table=accuracy["by_mapq"],
                              description="Placement accuracy by MAPQ bin (paftools mapeval rule)")
        png = mapq_accuracy_png(accuracy["by_mapq"], f"{accuracy['fraction_correct']:.2%} of reads placed correctly")
        plot = "\n" + write_png(out / "accuracy_by_mapq.png", png) + "\n"
    create_table_artifact(key="alignment-summary", table=[headline], description="Alignment summary")
    create_markdown_artifact(
        key="alignment-outputs",
        markdown=f"### Outputs\n\n- PAF: [{paf.name}]({paf.as_uri()})\n"
                 f"- summary: [summary.json]({(out / 'summary.json').as_uri()})\n{plot}",
        description="Where the results are",
    )
    return summary
