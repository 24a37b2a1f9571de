"""Genome-scale benchmark: ``python -m bench scale`` (``make bench-scale``).

For each genome size and kind: a synthetic reference (``repeats``: random sequence with about
5% diverged repeat copies; ``random``: random sequence only; written as FASTA contig by
contig) and 200,000 simulated 150-bp reads; then, in the
same run, helixflow's index build (pack + minimizers, in its own process) beside
``minimap2 -x sr -d``, and mapping the reads (seed + align under mpiexec + collect, on the
memory-mapped index) beside ``minimap2 -x sr`` on its prebuilt index. Printed per size:
index seconds, peak RSS, bytes per base, mapping seconds and accuracy (paftools' rule), with
the wrong placements at MAPQ >= 1 apart: a read from an exact repeat copy scores the same at
both copies (MAPQ 0 from either tool), so which copy it lands on is a coin toss. Head to head,
read by read: the reads each tool alone places wrongly, and how many of those are such ties
(the wrong pick at MAPQ 0 aligns as well as the truth: no more edits, over as many bases, than the
other tool's right pick, or its own secondary at the truth scores as high).
A plot of index time and memory against genome size lands beside the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.mapping import map_reads
from hpc.codec import reverse_complement
from tasks.genomics.paf import Hit, evaluate, is_correct, truth_from_name
from tasks.genomics.simulation import _mutate
from tasks.storage.index_cache import IndexFiles, open_index

GIB = 2**30
LINE = 80
ACGT = np.frombuffer(b"ACGTN", dtype=np.uint8)
KINDS = {"repeats": 0.05, "random": 0.0}  # share of each contig overwritten by diverged repeat copies


def measure(cmd: list[str], **kwargs) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of one command, from the kernel's accounting of it."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, **kwargs)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}")
    return time.perf_counter() - t, usage.ru_maxrss * 1024


def write_genome(folder: Path, total: int, contigs: int, reads: int, seed: int,
                 repeat_fraction: float = 0.05, divergence: float = 0.03) -> tuple[Path, Path]:
    """``reference.fa`` and ``reads.fq`` (wgsim-style names carrying the truth), one contig
    in memory at a time; reads drawn from each contig in proportion to its length."""
    rng = np.random.default_rng(seed)
    ref, fq = folder / "reference.fa", folder / "reads.fq"
    if ref.is_file() and fq.is_file():
        return ref, fq
    length = total // contigs
    per = np.full(contigs, reads // contigs)
    per[: reads - per.sum()] += 1
    serial = 0
    with open(ref.with_suffix(".tmp"), "wb") as fa, open(fq.with_suffix(".tmp"), "wb") as out:
        for c in range(contigs):
            codes = rng.integers(0, 4, length, dtype=np.uint8)
            span = 3000
            for _ in range(int(repeat_fraction * length / span)):
                a, b = rng.integers(0, length - span, 2)
                copy = codes[a : a + span].copy()
                subs = rng.random(span) < divergence
                copy[subs] = (copy[subs] + rng.integers(1, 4, int(subs.sum()), dtype=np.uint8)) % 4
                codes[b : b + span] = copy
            text = ACGT[codes]
            full = length // LINE * LINE
            body = np.concatenate((text[:full].reshape(-1, LINE), np.full((full // LINE, 1), 10, np.uint8)), axis=1)
            fa.write(f">chr{c + 1}\n".encode() + body.tobytes() + (text[full:].tobytes() + b"\n" if full < length
                                                                     else b""))
            for _ in range(int(per[c])):
                serial += 1
                start = int(rng.integers(0, length - 200))
                read, used = _mutate(codes[start : start + 200], 150, 0.006, 0.0005, rng)
                strand = "+"
                if rng.random() < 0.5:
                    read, strand = reverse_complement(read), "-"
                out.write(f"@chr{c + 1}_{start + 1}_{start + used}_{strand}_{serial}\n".encode()
                          + ACGT[read].tobytes() + b"\n+\n" + b"I" * 150 + b"\n")
    ref.with_suffix(".tmp").rename(ref)
    fq.with_suffix(".tmp").rename(fq)
    return ref, fq


def build_ours(ref: Path, staging: Path, k: int | None, w: int | None) -> tuple[float, int, IndexFiles]:
    code = ("import sys, json; from tasks.storage.index_cache import build_cached_index as b; "
            f"f = b({str(ref)!r}, {str(ref)!r}, {str(staging)!r}, 'bench' * 13, {k}, {w}); "
            "print(json.dumps([f.genome, f.index]))")
    shutil.rmtree(staging / "index", ignore_errors=True)
    out = staging / "index.out"
    with open(out, "w") as fh:
        seconds, rss = measure([sys.executable, "-c", code], stdout=fh)
    return seconds, rss, IndexFiles(*json.loads(out.read_text()))


def folder_bytes(*folders: str) -> int:
    return sum(p.stat().st_size for f in folders for p in Path(f).glob("*.bin"))


def map_ours(files: IndexFiles, reads: Path, work: Path, ranks: int) -> tuple[dict, float, int]:
    code = ("import json, sys; from pathlib import Path; from bench.scale import _map_child; "
            f"print(json.dumps(_map_child({files.genome!r}, {files.index!r}, {str(reads)!r}, {str(work)!r}, {ranks})))")
    out = work / "map.out"
    shutil.rmtree(work / "fsx", ignore_errors=True)
    with open(out, "w") as fh:
        seconds, rss = measure([sys.executable, "-c", code], stdout=fh)
    return json.loads(out.read_text().splitlines()[-1]), seconds, rss


def _map_child(genome: str, index: str, reads: str, work: str, ranks: int) -> dict:
    summary, times = map_reads(open_index(IndexFiles(genome, index)), Path(genome), Path(reads), Path(work),
                               ranks, 50_000)
    return {"accuracy": summary["accuracy"], "mapped": summary["mapped"], "times": times}


def minimap2(ref: Path, reads: Path, work: Path) -> dict:
    mmi = work / "ref.mmi"
    idx_s, idx_rss = measure(["minimap2", "-x", "sr", "-t", "2", "-d", str(mmi), str(ref)],
                             stderr=subprocess.DEVNULL)
    paf = work / "minimap2.paf"
    with open(paf, "w") as fh:
        map_s, map_rss = measure(["minimap2", "-x", "sr", "-t", "2", "-c", str(mmi), str(reads)], stdout=fh,
                                 stderr=subprocess.DEVNULL)
    names = [line[1:].split()[0] for i, line in enumerate(open(reads)) if i % 4 == 0]
    primaries = [hits[0] for hits in alignments(paf).values() if hits[0].primary]
    return {"index_s": idx_s, "index_rss": idx_rss, "bytes": mmi.stat().st_size, "map_s": map_s,
            "map_rss": map_rss, "accuracy": evaluate(primaries, names), "paf": paf}


def alignments(paf: Path) -> dict[str, list[Hit]]:
    """Each read's alignments in a PAF, its primary first."""
    out: dict[str, list[Hit]] = {}
    for hit in (Hit.from_paf_line(line) for line in open(paf)):
        hits = out.setdefault(hit.qname, [])
        if hit.primary:
            hits.insert(0, hit)
        else:
            hits.append(hit)
    return out


def head_to_head(ours: dict[str, list[Hit]], theirs: dict[str, list[Hit]]) -> dict[str, int]:
    """Reads that one tool places wrongly and the other rightly, and of those, the ties: the
    wrong tool's pick at MAPQ 0 aligns at least as well as the truth, by its own scores (a
    secondary of its own at the truth scores as high) or by edits (no more than the other
    tool's right pick, over as many bases). Repeat copies a read cannot tell apart, or a read
    whose errors made another copy the closer one: no aligner places these right but by chance."""
    out = {"ours_only_wrong": 0, "ours_only_wrong_ties": 0, "theirs_only_wrong": 0, "theirs_only_wrong_ties": 0}

    def right(hit: Hit, name: str) -> bool:
        return is_correct(hit, truth_from_name(name, 0, hit.qlen))

    def placed_right(hits: list[Hit], name: str) -> bool:
        return bool(hits) and hits[0].primary and right(hits[0], name)

    def tie(wrong: list[Hit], good: Hit, name: str) -> bool:
        if not wrong or not wrong[0].primary or wrong[0].mapq != 0:
            return False
        first = wrong[0]
        if first.nm <= good.nm and first.qend - first.qstart == good.qend - good.qstart:
            return True
        return any(h.score >= first.score and right(h, name) for h in wrong[1:])

    for name in ours.keys() | theirs.keys():
        a, b = ours.get(name, []), theirs.get(name, [])
        ok_a, ok_b = placed_right(a, name), placed_right(b, name)
        if ok_a == ok_b:
            continue
        side, wrong, good = ("theirs", b, a[0]) if ok_a else ("ours", a, b[0])
        out[f"{side}_only_wrong"] += 1
        out[f"{side}_only_wrong_ties"] += tie(wrong, good, name)
    return out


def wrong_at(acc: dict, low: int) -> int:
    """Wrongly placed primaries at MAPQ >= ``low``."""
    return sum(b["reads"] - b["correct"] for b in acc["by_mapq"] if int(b["mapq"].split("-")[0]) >= low)


def confident(acc: dict) -> str:
    rows = [b for b in acc["by_mapq"] if int(b["mapq"].split("-")[0]) >= 10]
    n = sum(b["reads"] for b in rows)
    return f"{sum(b['correct'] for b in rows) / n:.4%}" if n else "n/a"


def over_sets(frame) -> str:
    """Each size and kind over its data sets: the mean share placed correctly by each tool, and
    the reads each alone placed wrongly (ties among them), summed."""
    lines = ["over the data sets:"]
    for (mbp, kind), g in frame.groupby(["genome_mbp", "kind"], sort=False):
        lines.append(f"  {mbp:,.0f} Mbp, {kind}, {len(g)} sets: correct helixflow {g['correct'].mean():.4%} "
                     f"(from {g['correct'].min():.4%} to {g['correct'].max():.4%}), minimap2 "
                     f"{g['mm2_correct'].mean():.4%} (from {g['mm2_correct'].min():.4%} to "
                     f"{g['mm2_correct'].max():.4%}); "
                     f"alone wrong: helixflow {g['ours_only_wrong'].sum()} ({g['ours_only_wrong_ties'].sum()} ties), "
                     f"minimap2 {g['theirs_only_wrong'].sum()} ({g['theirs_only_wrong_ties'].sum()} ties)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100e6,300e6,1e9", help="genome sizes in bases, comma-separated")
    parser.add_argument("--kinds", default="repeats,random",
                        help="genomes per size: repeats (~5%% diverged repeat copies), random (none)")
    parser.add_argument("--reads", type=int, default=200_000)
    parser.add_argument("--contigs", type=int, default=10)
    parser.add_argument("--k", type=int, default=None, help="seed k-mer length (default: the pipeline's, by size)")
    parser.add_argument("--w", type=int, default=None, help="minimizer window (default: the pipeline's, by size)")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(".helixflow/bench-scale"))
    parser.add_argument("--keep", action="store_true", help="keep the generated genomes for the next run")
    parser.add_argument("--seeds", default="0", help="data sets per size and kind, comma-separated (0: the default "
                        "set); with several, the mean of each tool's accuracy over them is printed at the end: ties "
                        "between identical copies fall by chance, and so does one set's difference")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    rows = []
    kinds = args.kinds.split(",")
    if set(kinds) - set(KINDS):
        parser.error(f"--kinds: expected some of {', '.join(KINDS)}, got {args.kinds!r}")
    seeds = [int(x) for x in args.seeds.split(",")]
    for size, kind, seed in ((int(float(s)), kind, seed) for s in args.sizes.split(",") for kind in kinds
                             for seed in seeds):
        folder = work / f"g{size // 1_000_000}M" if kind == "repeats" else work / f"g{size // 1_000_000}M-{kind}"
        folder = folder.with_name(f"{folder.name}-s{seed}") if seed else folder
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        ref, reads = write_genome(folder, size, args.contigs, args.reads, seed=size % 1000 + 7 + 1000 * seed,
                                  repeat_fraction=KINDS[kind])
        print(f"{size / 1e6:,.0f} Mbp, {kind}{f', set {seed}' if seed else ''}: data ready in "
              f"{time.perf_counter() - t:.0f} s "
              f"({args.contigs} contigs, {KINDS[kind]:.0%} diverged repeat copies, {args.reads:,} reads)", flush=True)
        mm = minimap2(ref, reads, folder)
        idx_s, idx_rss, files = build_ours(ref, folder, args.k, args.w)
        result, map_s, map_rss = map_ours(files, reads, folder, args.ranks)
        row = {"genome_mbp": size / 1e6, "kind": kind, "set": seed, "k": files.seeding[0], "w": files.seeding[1],
               "index_s": idx_s, "index_rss_gib": idx_rss / GIB,
               "bytes_per_base": folder_bytes(files.genome, files.index) / size,
               "map_s": map_s, "map_rss_gib": map_rss / GIB,
               "correct": result["accuracy"]["fraction_correct"], "mapq10_correct": confident(result["accuracy"]),
               "wrong_mapq1": wrong_at(result["accuracy"], 1),
               "mm2_index_s": mm["index_s"], "mm2_index_rss_gib": mm["index_rss"] / GIB,
               "mm2_bytes_per_base": mm["bytes"] / size, "mm2_map_s": mm["map_s"],
               "mm2_correct": mm["accuracy"]["fraction_correct"], "mm2_mapq10_correct": confident(mm["accuracy"]),
               "mm2_wrong_mapq1": wrong_at(mm["accuracy"], 1)}
        rows.append(row)
        print(f"  index   helixflow {idx_s:7.1f} s {idx_rss / GIB:6.2f} GiB {row['bytes_per_base']:.2f} B/base"
              f"   minimap2 {mm['index_s']:7.1f} s {mm['index_rss'] / GIB:6.2f} GiB {row['mm2_bytes_per_base']:.2f} B/base"
              f"   ratio time {idx_s / mm['index_s']:.2f}x, RSS {idx_rss / mm['index_rss']:.2f}x", flush=True)
        print(f"  mapping helixflow {map_s:7.1f} s {map_rss / GIB:6.2f} GiB correct {row['correct']:.4%} "
              f"(MAPQ>=10 {row['mapq10_correct']}, wrong at MAPQ>=1: {row['wrong_mapq1']})   minimap2 "
              f"{mm['map_s']:7.1f} s correct {row['mm2_correct']:.4%} (MAPQ>=10 {row['mm2_mapq10_correct']}, "
              f"wrong at MAPQ>=1: {row['mm2_wrong_mapq1']})", flush=True)
        h2h = head_to_head(alignments(folder / "out" / "reads.paf"), alignments(mm["paf"]))
        row.update(h2h)
        print(f"  head to head: helixflow alone wrong on {h2h['ours_only_wrong']} reads "
              f"({h2h['ours_only_wrong_ties']} of them ties: MAPQ 0 on a copy that aligns as well as the truth), "
              f"minimap2 alone wrong on {h2h['theirs_only_wrong']} ({h2h['theirs_only_wrong_ties']} ties)", flush=True)
        print(f"  stages: {', '.join(f'{k} {v:.1f} s' for k, v in result['times'].items())}", flush=True)
        shutil.rmtree(folder / "fsx", ignore_errors=True)
        shutil.rmtree(folder / "index", ignore_errors=True)
        (folder / "ref.mmi").unlink(missing_ok=True)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    import pandas as pd

    from bench.plots import scale_png

    frame = pd.DataFrame(rows)
    out = work / "scale.csv"
    frame.to_csv(out, index=False)
    (work / "scale.png").write_bytes(scale_png(rows))
    print(frame.to_markdown(index=False, floatfmt=".3g"))
    if len(seeds) > 1:
        print(over_sets(frame))
    print(f"table: {out}; plot: {work / 'scale.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
