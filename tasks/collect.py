"""Collect task: merge rank outputs into PAF, write the summary, score against truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from hpc.align_job import COLUMNS
from hpc.files import atomic_write_text
from hpc.genome import read_genome_json
from hpc.manifest import (ManifestError, StagedRun, load_manifest, load_npz_verified, manifest_settings,
                          verify_entry)
from hpc.run_folder import AlignOutputs
from tasks.genomics.encoding import EncodedShard, decode_sequences, name_list
from tasks.genomics.paf import Hit, evaluate, mapq_from_scores
from tasks.genomics.plots import mapq_accuracy_png, write_png
from tasks.genomics.sam import sam_header, sam_records
from tasks.runtime.options import IO_TASK


def load_rank_columns(outputs: AlignOutputs) -> dict[str, np.ndarray]:
    """Every rank's columns (of this attempt), concatenated and ordered by (shard, read), primary first."""
    parts = []
    for r in range(outputs.ranks):
        path = outputs.output(r)
        with np.load(path, allow_pickle=False) as data:
            parts.append({k: data[k] for k in COLUMNS})
    cols = {k: np.concatenate([p[k] for p in parts]) for k in COLUMNS}
    order = np.lexsort((-cols["primary"].astype(np.int64), cols["read"], cols["shard"]))
    return {k: v[order] for k, v in cols.items()}


def hits_from_columns(cols: dict[str, np.ndarray], shards: list, tnames: list[str], tlens: list[int],
                      mismatch_cost: int) -> list[Hit]:
    """PAF records of the rank columns; a reverse-strand row has its query span flipped to
    the read. Secondary alignments get MAPQ 0."""
    reverse = cols["strand"].astype(bool)
    qlen = np.concatenate([s["lengths"] for s in shards])[
        np.cumsum([0] + [len(s["lengths"]) for s in shards])[:-1][cols["shard"]] + cols["read"]].astype(np.int64)
    q_start = np.where(reverse, qlen - cols["q_end"], cols["q_start"])
    q_end = np.where(reverse, qlen - cols["q_start"], cols["q_end"])
    primary = cols["primary"].astype(bool)
    mapq = [mapq_from_scores(b, s, mismatch_cost) if p else 0
            for b, s, p in zip(cols["score"].tolist(), cols["second"].tolist(), primary.tolist())]
    names = [name_list(s["names"]) for s in shards]
    qnames = [names[sh][rd] for sh, rd in zip(cols["shard"].tolist(), cols["read"].tolist())]
    tstart = (cols["wstart"] + cols["r_start"]).tolist()
    tend = (cols["wstart"] + cols["r_end"]).tolist()
    contig = cols["contig"].tolist()
    return [
        Hit(qn, ql, qs, qe, "-" if rv else "+", tnames[ct], tlens[ct], ts, te, nmatch, block, mq, sc, nm, cg, pr)
        for qn, ql, qs, qe, rv, ct, ts, te, nmatch, block, mq, sc, nm, cg, pr in zip(
            qnames, qlen.tolist(), q_start.tolist(), q_end.tolist(), reverse.tolist(), contig, tstart, tend,
            cols["nmatch"].tolist(), cols["block"].tolist(), mapq, cols["score"].tolist(), cols["nm"].tolist(),
            cols["cigar"].tolist(), primary.tolist())
    ]


class ReconciliationError(ManifestError):
    """The rank outputs do not account for every staged read exactly once."""


def check_every_read_once(cols: dict[str, np.ndarray], shard_reads: list[int], where: Path) -> None:
    """Every row names a staged read, and no read has two primary alignments (a read without
    one is reported unmapped), so each input read is in the output exactly once."""
    shard, read = cols["shard"].astype(np.int64), cols["read"].astype(np.int64)
    sizes = np.asarray(shard_reads, dtype=np.int64)
    bad = (shard < 0) | (shard >= sizes.shape[0])
    bad[~bad] = (read[~bad] < 0) | (read[~bad] >= sizes[shard[~bad]])
    if bad.any():
        k = int(np.nonzero(bad)[0][0])
        raise ReconciliationError(f"{where}: an alignment names read {int(read[k])} of shard {int(shard[k])}, "
                                  f"which the manifest does not list ({int(bad.sum())} such rows)")
    base = np.concatenate([[0], np.cumsum(sizes)])
    primaries = np.bincount(base[shard[cols["primary"] == 1]] + read[cols["primary"] == 1], minlength=int(base[-1]))
    if (primaries > 1).any():
        g = int(np.argmax(primaries > 1))
        s = int(np.searchsorted(base, g, side="right") - 1)
        raise ReconciliationError(f"{where}: read {g - int(base[s])} of shard {s} has {int(primaries[g])} primary "
                                  "alignments (a rank output from another attempt?); expected at most one")


def write_results(manifest_path: Path, outputs: AlignOutputs, output_dir: str, sam: bool = False,
                  staged: StagedRun | None = None) -> dict:
    """Write ``alignments.paf`` (and ``alignments.sam`` when ``sam``) and ``summary.json`` under
    ``output_dir``; return the summary. Every input read is counted once, mapped or unmapped;
    with ``staged``, the manifest must be the one staged, holding every encoded read."""
    manifest = staged.verify() if staged else load_manifest(Path(manifest_path))
    root = Path(manifest_path).parent
    ref = read_genome_json(verify_entry(root, manifest["reference"]).parent)
    tnames = [str(n) for n in ref["names"]]
    shards = [load_npz_verified(root, s) for s in manifest["shards"]]
    scoring = manifest_settings(manifest).scoring
    mismatch_cost = scoring.match - scoring.mismatch
    cols = load_rank_columns(outputs)
    check_every_read_once(cols, [int(s["reads"]) for s in manifest["shards"]], outputs.dir)
    hits = hits_from_columns(cols, shards, tnames, [int(x) for x in ref["lengths"]], mismatch_cost)
    names = [n for s in shards for n in name_list(s["names"])]
    primaries = sum(h.primary for h in hits)

    out = Path(output_dir).resolve()
    paf = out / "alignments.paf"
    atomic_write_text(paf, "".join(h.paf_line() + "\n" for h in hits))
    if sam:
        # Hits are keyed by the read's place in the input, never its name: two reads may share one.
        base = np.cumsum([0] + [len(s["lengths"]) for s in shards])
        by_read: dict[int, list[Hit]] = {}
        for g, h in zip((base[cols["shard"]] + cols["read"]).tolist(), hits):
            by_read.setdefault(g, []).append(h)
        body = [sam_header(tnames, [int(x) for x in ref["lengths"]])]
        g = 0
        for shard in shards:
            codes = EncodedShard.from_arrays(shard)
            for name, seq in zip(codes.names, decode_sequences(codes)):
                body.extend(sam_records(name, seq, by_read.get(g, [])))
                g += 1
        atomic_write_text(out / "alignments.sam", "".join(body))
    accuracy = evaluate(hits, names)
    summary = {
        "reads": len(names),
        "mapped": primaries,
        "unmapped": len(names) - primaries,
        "secondary": len(hits) - primaries,
        "paf": str(paf),
        "sam": str(out / "alignments.sam") if sam else None,
        "summary": str(out / "summary.json"),
        "staging": str(root),
        "accuracy": accuracy,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    return summary


@task(name="collect", **IO_TASK)
def collect_results(staged: StagedRun, outputs: AlignOutputs, output_dir: str, sam: bool = False) -> dict:
    """:func:`write_results`, with the summary, accuracy and a plot as artifacts."""
    summary = write_results(staged.manifest, outputs, output_dir, sam, staged=staged)
    out, paf, accuracy = Path(summary["summary"]).parent, Path(summary["paf"]), summary["accuracy"]
    get_run_logger().info("wrote %d alignments to %s", summary["mapped"], paf)

    headline = {"reads": summary["reads"], "mapped": summary["mapped"], "unmapped": summary["unmapped"],
                "secondary": summary["secondary"]}
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
