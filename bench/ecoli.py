"""The real-genome sets of ``make bench-mapping``: E. coli K-12 MG1655 (Debian's
ragout-examples, unpacked by ``make test-deps``) with dwgsim pairs, mapped end to end by the
align-reads CLI (paired, then R1 alone as single-end) beside ``minimap2 -ax sr`` on the
same files in the same run; then ART pairs with the HiSeq 2500 profile (:mod:`bench.art`),
paired; then a short-insert library with adapters, poly-G and random pairs
(:mod:`bench.library`). Scored per mate by paftools' rule from each tool's SAM/BAM: accuracy,
properly-paired share, wrong placements at MAPQ >= 60, 30, 10, 1 (and how many the MAPQs say),
random reads placed, wall time."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.art import art_truth, simulate_art
from bench.library import RANDOM_SHARE, write_library
from tasks.genomics.paf import Truth, truth_from_name

GENOME = Path(__file__).resolve().parents[1] / ".helixflow" / "data" / "MG1655-K12.fasta.gz"
THRESHOLDS = (60, 30, 10, 1)  # MAPQ 0: a tie between copies as good as each other, placed by chance
RANDOM_READS = "rand_"  # dwgsim's random reads (-y) and the library set's: no origin, scored apart


def simulate(work: Path, pairs: int, seed: int = 3) -> dict[str, Path]:
    """The reference (plain FASTA) and dwgsim's R1/R2 (insert 350 +- 35, 150 bp, Illumina-like
    error rising along the read: 0.2-1% on R1, 0.3-1.5% on R2, 0.1% mutations)."""
    if not GENOME.is_file():
        raise SystemExit(f"{GENOME} is missing: run `make test-deps` (it unpacks Debian's ragout-examples)")
    work.mkdir(parents=True, exist_ok=True)
    ref = work / "MG1655.fa"
    if not ref.is_file():
        ref.write_bytes(gzip.decompress(GENOME.read_bytes()))
    prefix = work / f"dwgsim{pairs}"
    r1, r2 = Path(f"{prefix}.bwa.read1.fastq.gz"), Path(f"{prefix}.bwa.read2.fastq.gz")
    if not r2.is_file():
        subprocess.run(["dwgsim", "-e", "0.002-0.01", "-E", "0.003-0.015", "-d", "350", "-s", "35", "-N", str(pairs),
                        "-1", "150", "-2", "150", "-r", "0.001", "-y", "0", "-z", str(seed), str(ref), str(prefix)],
                       check=True, capture_output=True)
    return {"reference": ref, "r1": r1, "r2": r2}


def score_sam(path: Path, truth: dict[tuple[str, int], Truth] | None = None) -> dict:
    """Per-mate accuracy (paftools' rule), properly-paired share and wrong primaries at each
    MAPQ threshold, and at MAPQ 0 (``mapq0``: [placed, wrong]), from every primary record of a
    SAM/BAM. ``expected``: how many of the primaries at MAPQ >= 1 the MAPQs themselves say are
    wrong (the sum of 10^(-MAPQ/10)), to set beside ``wrong[1]``: MAPQ you can trust says as much.
    ``truth``: each read's origin by ``(name, mate)`` (ART's, :func:`bench.art.art_truth`);
    without it, the origin is read from the name (dwgsim's, wgsim's). Random reads (named
    ``rand_...``) are left out of the rest and counted in ``random``: [reads, placed, placed at
    MAPQ >= 10]."""
    import pysam

    reads = correct = proper = 0
    mates = {1: [0, 0], 2: [0, 0], 0: [0, 0]}
    wrong = dict.fromkeys(THRESHOLDS, 0)
    placed = dict.fromkeys(THRESHOLDS, 0)
    mapq0 = [0, 0]
    random = [0, 0, 0]
    expected = 0.0
    with pysam.AlignmentFile(str(path), "r" if path.suffix == ".sam" else "rb") as fh:
        for r in fh.fetch(until_eof=True):
            if r.is_secondary or r.is_supplementary:
                continue
            if truth is None and r.query_name.startswith(RANDOM_READS):
                random[0] += 1
                random[1] += not r.is_unmapped
                random[2] += not r.is_unmapped and r.mapping_quality >= 10
                continue
            mate = 1 if r.is_read1 else 2 if r.is_read2 else 0
            reads += 1
            mates[mate][0] += 1
            if r.is_unmapped:
                continue
            ok = _correct(r, truth_from_name(r.query_name, mate, r.query_length) if truth is None
                          else _art_origin(truth, r.query_name, mate))
            correct += ok
            mates[mate][1] += ok
            proper += r.is_proper_pair
            if r.mapping_quality == 0:
                mapq0[0] += 1
                mapq0[1] += not ok
            else:
                expected += 10 ** (-r.mapping_quality / 10)
            for t in THRESHOLDS:
                if r.mapping_quality >= t:
                    placed[t] += 1
                    wrong[t] += not ok
    return {"reads": reads, "correct": correct, "by_mate": {m: v for m, v in mates.items() if v[0]},
            "proper": proper, "wrong": wrong, "placed": placed, "mapq0": mapq0,
            "expected": expected, "random": random}


def _art_origin(truth: dict[tuple[str, int], Truth], name: str, mate: int) -> Truth | None:
    """A read's origin in ART's truth: by name and mate, or for a mate of an ART pair mapped
    single-end (its name keeps ``/1`` or ``/2``, as minimap2's and ours do), by the name's
    suffix."""
    found = truth.get((name, mate))
    if found is None and mate == 0 and name[-2:] in ("/1", "/2"):
        found = truth.get((name[:-2], int(name[-1])))
    return found


def _correct(r, truth: Truth | None) -> bool:
    if truth is None:
        raise ValueError(f"read {r.query_name!r} has no truth (in its name, or in the simulator's truth file)")
    start, end = r.reference_start, r.reference_end
    return (r.reference_name == truth.contig and ("-" if r.is_reverse else "+") == truth.strand
            and min(end, truth.end) - max(start, truth.start) >= 0.1 * (max(end, truth.end) - min(start, truth.start)))


def run_ours(files: dict[str, Path], work: Path, paired: bool, ranks: int, extra: tuple[str, ...] = (),
             env: dict[str, str] | None = None) -> tuple[Path, float]:
    """helixflow's CLI on the set (``extra``: more options; ``env``: its environment)."""
    out = work / ("ours-paired" if paired else "ours-single")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "flows.pipeline", "--reads", str(files["r1"]), "--reference", str(files["reference"]),
           "--output", str(out / "out"), "--staging-dir", str(out / "fsx"), "--backend", "local", "--ranks", str(ranks),
           "--shard-size", "100000", "--sample", "ecoli"]
    if paired:
        cmd += ["--reads2", str(files["r2"])]
    t = time.perf_counter()
    done = subprocess.run([*cmd, *extra], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - t
    if done.returncode != 0:
        raise RuntimeError(f"helixflow exited {done.returncode}: {done.stderr[-2000:]}")
    return out / "out" / "ecoli.bam", seconds


def run_minimap2(files: dict[str, Path], work: Path, paired: bool) -> tuple[Path, float]:
    sam = work / ("minimap2-paired.sam" if paired else "minimap2-single.sam")
    cmd = ["minimap2", "-ax", "sr", "-t", "2", str(files["reference"]), str(files["r1"])]
    if paired:
        cmd.append(str(files["r2"]))
    t = time.perf_counter()
    with open(sam, "w") as fh:
        subprocess.run(cmd, stdout=fh, stderr=subprocess.DEVNULL, check=True)
    return sam, time.perf_counter() - t


def line(label: str, s: dict, seconds: float) -> str:
    mates = "  ".join(f"mate {m}: {c / n:.4%}" for m, (n, c) in s["by_mate"].items() if m)
    wrong = ", ".join(f">={t}: {s['wrong'][t]} of {s['placed'][t]}" for t in THRESHOLDS)
    wrong += f" (MAPQ says {s['expected']:.1f} at >=1)"
    pairs = f"  properly paired {s['proper'] / s['reads']:.2%}" if s["by_mate"].get(1) else ""
    n, placed, confident = s["random"]
    junk = f"\n{'':10s} random reads placed: {placed} of {n} ({confident} at MAPQ >= 10)" if n else ""
    return (f"{label:10s} correct {s['correct'] / s['reads']:.4%} of {s['reads']}  {mates}{pairs}\n"
            f"{'':10s} wrong at MAPQ {wrong}   wall {seconds:.1f} s{junk}")


def main_ecoli(work: Path, pairs: int, ranks: int) -> None:
    files = simulate(work, pairs)
    _ecoli_dwgsim(work, files, pairs, ranks)
    art = simulate_art(files["reference"], work / "art", pairs)
    art_files = {"reference": files["reference"], "r1": art["r1"], "r2": art["r2"]}
    truth = art_truth(art["truth"])
    print(f"ART pairs, HiSeq 2500 profile (art_illumina -ss HS25: quality-dependent substitutions and indels), "
          f"{pairs:,} pairs of 150 bp, insert 350 +- 35:", flush=True)
    ours, ours_s = run_ours(art_files, work / "art", True, ranks)
    theirs, theirs_s = run_minimap2(art_files, work / "art", True)
    print(line("helixflow", score_sam(ours, truth), ours_s))
    print(line("minimap2", score_sam(theirs, truth), theirs_s), flush=True)
    lib = write_library(files["reference"], work / "library", pairs)
    print(f"A short-insert library (bench.library): {pairs:,} pairs of 150 bp, fragments normal(150, 50) from 40 "
          f"to 500 bp (reads run on into the adapter and poly-G), errors as dwgsim's, "
          f"{RANDOM_SHARE:.0%} random pairs:", flush=True)
    ours, ours_s = run_ours(lib, work / "library", True, ranks)
    theirs, theirs_s = run_minimap2(lib, work / "library", True)
    print(line("helixflow", score_sam(ours), ours_s))
    print(line("minimap2", score_sam(theirs), theirs_s), flush=True)


def _ecoli_dwgsim(work: Path, files: dict[str, Path], pairs: int, ranks: int) -> None:
    print(f"E. coli K-12 MG1655 ({files['reference'].stat().st_size / 1e6:.1f} MB), {pairs:,} dwgsim pairs of "
          "150 bp (insert 350 +- 35; errors 0.2-1% R1, 0.3-1.5% R2); helixflow's CLI end to end (BAM + PAF) "
          "beside minimap2 -ax sr -t 2", flush=True)
    for paired in (True, False):
        ours, ours_s = run_ours(files, work, paired, ranks)
        theirs, theirs_s = run_minimap2(files, work, paired)
        print("paired-end:" if paired else "single-end (R1 alone):")
        print(line("helixflow", score_sam(ours), ours_s))
        print(line("minimap2", score_sam(theirs), theirs_s), flush=True)
        if paired:
            run = ours.parent.parent
            with_bam, rss_bam = measure_collect(run, ranks, True)
            paf_only, rss_paf = measure_collect(run, ranks, False)
            print(f"{'':10s} collect alone (own process): PAF + sorted, indexed BAM {with_bam:.1f} s, peak RSS "
                  f"{rss_bam / 2**20:.0f} MiB; PAF only {paf_only:.1f} s, {rss_paf / 2**20:.0f} MiB; the BAM adds "
                  f"{with_bam - paf_only:.1f} s = {(with_bam - paf_only) / ours_s:.1%} of the run's wall", flush=True)


def _collect_child(manifest: str, align: str, ranks: int, out: str, bam: bool) -> None:
    from hpc.run_folder import AlignOutputs
    from tasks.genomics.merge import SampleOutputs, write_results

    (first,) = Path(align).glob("rank_0000-*.npz")  # the attempt's token is in the rank files' names
    attempt = first.name.removeprefix("rank_0000-").removesuffix(".npz")
    write_results(Path(manifest), AlignOutputs(Path(align), attempt, ranks), out, spec=SampleOutputs("collect", bam=bam))


def measure_collect(run: Path, ranks: int, bam: bool) -> tuple[float, int]:
    """Collect alone, in its own process, on a finished run's staging: seconds and peak RSS."""
    from bench.scale import measure

    (manifest,) = run.glob("fsx/run-*/manifest.json")
    out = run / ("collect-bam" if bam else "collect-paf")
    code = ("from bench.ecoli import _collect_child; "
            f"_collect_child({str(manifest)!r}, {str(manifest.parent / 'align')!r}, {ranks}, {str(out)!r}, {bam})")
    return measure([sys.executable, "-c", code])
