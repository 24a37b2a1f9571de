"""``make bench-throughput``: helixflow's CLI end to end beside ``minimap2 -ax sr -t 2`` on
the same files in the same run, on E. coli K-12 MG1655 (Debian's ragout-examples) with
dwgsim pairs: 2M reads and 200k reads by default, after an untimed warm-up run that compiles
the kernels into their cache. Per set it prints the wall of each and the ratio; seeding +
alignment (the candidate-windows and align-job stages, no start-up, ingest, encode or
collect) against minimap2's whole wall; the peak RSS of every process of the run (a
process-tree sampler: the flow, Ray's workers and daemons, the MPI ranks, samtools when
there is one, Prefect's server); accuracy of both by paftools' rule; and where the rest of
the wall went. Then dollars per million reads and per 30x human genome for each instance
type, from the marginal rate between the two sets, beside the published GPU-on-spot anchor.

Both tools read the set's files once, untimed, before their run: each starts with its inputs
in the page cache. Each set runs twice: from nothing, as a user's first CLI run (Prefect's temporary API
server, a local Ray started and stopped by the run), and with standing services, as a
served deployment on a cluster has them (a ``prefect server`` already up, the CLI pointed
at it by ``PREFECT_API_URL``, and a Ray cluster left standing, ``--ray-address auto``); the
difference is what the per-run start-up costs. The standing services get an untimed warm-up
run of their own first, so the timed runs find Ray's workers started, as a deployment's runs
after its first do. In the second mode the standing Ray's workers are not the run's
children, so their RSS is not sampled.

The targets (#19) are printed beside the figures; nothing here asserts on them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench.cost import ANCHOR_USD_PER_30X, READS_PER_30X_HUMAN, load_instances
from bench.ecoli import THRESHOLDS, run_ours, score_sam, simulate
from bench.meter import TreeSampler
from bench.scale import measure
from tasks.runtime.api_server import answers, free_port
from tasks.runtime.ray_cluster import local_store_bytes

TARGET_END_TO_END = {2_000_000: 2.5, 200_000: 6.0}
TARGET_CORE = 1.5
STANDING = "standing Prefect server and Ray (as a served deployment has them)"
RSS_LIMIT = 2**30
MIB = 2**20
# Ray's two node agents name themselves ray::DashboardAgent and ray::RuntimeEnvAgent, as its
# workers name themselves ray::<task>: daemons are matched first.
ROLES = (("align rank", re.compile(r"hpc\.align_job")), ("flow (driver)", re.compile(r"flows\.pipeline")),
         ("Ray daemons", re.compile(r"raylet|gcs_server|dashboard|log_monitor|monitor\.py|ray::\w+Agent\b")),
         ("Ray worker", re.compile(r"ray::|default_worker")),
         ("samtools", re.compile(r"samtools")), ("Prefect server", re.compile(r"prefect|uvicorn")),
         ("mpiexec", re.compile(r"mpiexec|hydra|orted|prterun|prted")))


def role(cmdline: str) -> str:
    for name, pattern in ROLES:
        if pattern.search(cmdline):
            return name
    return "other"


def peaks_by_role(sampler: TreeSampler, own_pid: int | None = None) -> dict[str, tuple[int, int]]:
    """Per role: (largest peak RSS of one process, how many processes). The sampler's tree is
    rooted at this benchmark's own process (``own_pid``, this one by default), which is left out:
    it is not part of the run (it showed as "other", 171 MiB)."""
    own_pid = os.getpid() if own_pid is None else own_pid
    out: dict[str, tuple[int, int]] = {}
    for pid, (name, rss) in sampler.peak_by_pid.items():
        if pid == own_pid:
            continue
        r = role(name)
        peak, n = out.get(r, (0, 0))
        out[r] = (max(peak, rss), n + 1)
    return out


@contextlib.contextmanager
def standing_services(work: Path, ranks: int) -> Iterator[tuple[tuple[str, ...], dict[str, str]]]:
    """A Prefect server (its own PREFECT_HOME under ``work``) and a local Ray cluster, up for
    the block; yields the CLI options and environment that use them."""
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(work / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    ray = str(Path(sys.executable).with_name("ray"))
    if subprocess.run([ray, "status"], capture_output=True, env=env).returncode == 0:
        raise SystemExit("a Ray cluster is already up on this node: stop it, or run with --no-standing")
    port = free_port()
    log = open(work / "prefect-server.log", "wb")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                               str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    ray_up = False
    try:
        deadline = time.time() + 180
        while not answers(url):
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"prefect server did not come up (see {work / 'prefect-server.log'})")
            time.sleep(0.5)
        subprocess.run([ray, "start", "--head", "--num-cpus", str(ranks), "--include-dashboard", "false",
                        "--object-store-memory", str(local_store_bytes(ranks))], check=True,  # as the CLI's own Ray
                       capture_output=True, env=env)
        ray_up = True
        yield ("--ray-address", "auto"), {**env, "PREFECT_API_URL": url}
    finally:
        if ray_up:  # only the cluster started here
            subprocess.run([ray, "stop", "--force"], capture_output=True, env=env)
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def read_through(*paths: Path) -> None:
    """Read the files once, so that a timed run finds them in the page cache: each tool starts
    as warm as the other (the one run second would otherwise read what the first brought in;
    the 2M set's reads took 5 s to ingest cold here, against 0.7 s warm)."""
    for path in paths:
        with open(path, "rb") as fh:
            while fh.read(8 << 20):
                pass


def run_set(work: Path, pairs: int, ranks: int, extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
            mode: str = "from nothing", keep: bool = False) -> dict:
    """One set, timed and scored. Unless ``keep``, helixflow's staging folder and minimap2's SAM
    go once scored (at 10M reads they are 6 GB; helixflow's BAM, PAF and summary stay)."""
    files = simulate(work / "data", pairs)  # the reference and every set's reads, kept between runs
    work = work / f"pairs-{pairs}"
    work.mkdir(parents=True, exist_ok=True)
    read_through(*files.values())
    with TreeSampler(interval=0.25) as sampler:
        bam, ours_s = run_ours(files, work, True, ranks, extra, env)
    summary = json.loads((bam.parent / "ecoli.summary.json").read_text())
    sam = work / "minimap2-paired.sam"
    read_through(*files.values())
    with open(sam, "w") as fh:
        mm2_s, mm2_rss = measure(["minimap2", "-ax", "sr", "-t", "2", str(files["reference"]), str(files["r1"]),
                                  str(files["r2"])], stdout=fh, stderr=subprocess.DEVNULL)
    stages = {s["stage"]: s for s in summary.get("stages", [])}
    result = {"reads": 2 * pairs, "mode": mode, "ours_s": ours_s, "mm2_s": mm2_s, "mm2_rss": mm2_rss,
              "stages": stages, "peaks": peaks_by_role(sampler), "ours": score_sam(bam), "mm2": score_sam(sam)}
    if not keep:
        shutil.rmtree(bam.parent.parent / "fsx", ignore_errors=True)
        sam.unlink(missing_ok=True)
    return result


def stage_seconds(stages: dict, *names: str) -> float:
    return sum(s["seconds"] for k, s in stages.items() if any(k.startswith(n) for n in names))


def report(r: dict) -> list[str]:
    st = r["stages"]
    core = stage_seconds(st, "candidate windows", "align job")
    named = stage_seconds(st, "ingest reads", "encode", "candidate windows", "stage", "align job", "collect")
    target = TARGET_END_TO_END.get(r["reads"])
    acc = {k: r[k]["correct"] / r[k]["reads"] for k in ("ours", "mm2")}
    wrong = {k: "/".join(str(r[k]["wrong"][t]) for t in THRESHOLDS) for k in ("ours", "mm2")}
    ties = {k: "{1}/{0}".format(*r[k]["mapq0"]) if "mapq0" in r[k] else "n/a" for k in ("ours", "mm2")}
    said = {k: f"{r[k]['wrong'][1]} ({r[k]['expected']:.1f})" if "expected" in r[k] else "n/a" for k in ("ours", "mm2")}
    largest = max((p for p, _ in r["peaks"].values()), default=0)
    out = [f"{r['reads']:,} reads ({r['reads'] // 2:,} dwgsim pairs of 150 bp), {r.get('mode', 'from nothing')}",
           f"  {'':44s} {'helixflow':>10s} {'minimap2':>10s} {'ratio':>7s} {'target':>7s}",
           f"  {'wall, end to end':44s} {r['ours_s']:9.1f}s {r['mm2_s']:9.1f}s {r['ours_s'] / r['mm2_s']:6.2f}x "
           f"{f'{target}x' if target else '':>7s}",
           f"  {'seeding + alignment (candidates + align job)':44s} {core:9.1f}s {r['mm2_s']:9.1f}s "
           f"{core / r['mm2_s']:6.2f}x {f'{TARGET_CORE}x':>7s}",
           f"  {'peak RSS, largest process':44s} {largest / MIB:7.0f}MiB {r['mm2_rss'] / MIB:7.0f}MiB {'':7s} "
           f"{'<1 GiB':>7s}",
           f"  {'correct (per mate, paftools rule)':44s} {acc['ours']:10.4%} {acc['mm2']:10.4%}",
           f"  {'wrong at MAPQ >= ' + '/'.join(map(str, THRESHOLDS)):44s} {wrong['ours']:>10s} {wrong['mm2']:>10s}",
           f"  {'wrong at MAPQ 0 (ties: a coin toss) of placed':44s} {ties['ours']:>10s} {ties['mm2']:>10s}",
           f"  {'wrong at MAPQ >= 1 (as many as MAPQ says)':44s} {said['ours']:>10s} {said['mm2']:>10s}",
           "  helixflow's wall by stage: " + ", ".join(f"{k} {s['seconds']:.1f} s" for k, s in st.items()
                                                         if not k.startswith("align rank"))
           + f"; start-up, reference, index and shut-down {r['ours_s'] - named:.1f} s",
           "  peak RSS by process: " + ", ".join(f"{name} {p / MIB:.0f} MiB" + (f" (x{n})" if n > 1 else "")
                                                  for name, (p, n) in sorted(r["peaks"].items(), key=lambda kv: -kv[1][0]))]
    over = [name for name, (p, _) in r["peaks"].items() if p >= RSS_LIMIT]
    out.append(f"  every process under 1 GiB: {'yes' if not over else 'no (' + ', '.join(over) + ')'}")
    return out


def growth_line(small: list[dict], large: list[dict]) -> str:
    """Each role's peak RSS on the smaller set and on the larger, as the range over the runs of
    each: whether a process's memory grows with the reads (it should not: every stage holds a
    shard at a time). Where the larger set's highest peak is above the smaller's, by how much:
    one run's peak is the highest of many shards', so a run-to-run spread is part of it."""
    roles = sorted(set.intersection(*(set(r["peaks"]) for r in small + large)),
                   key=lambda k: -max(r["peaks"][k][0] for r in large))

    def span(runs: list[dict], k: str) -> tuple[int, int]:
        peaks = [round(r["peaks"][k][0] / MIB) for r in runs]  # as the report rounds them
        return min(peaks), max(peaks)

    def text(lo: int, hi: int) -> str:
        return f"{lo}" if lo == hi else f"{lo}-{hi}"

    parts = []
    for k in roles:
        (a, b), (c, d) = span(small, k), span(large, k)
        parts.append(f"{k} {text(a, b)} -> {text(c, d)} MiB" + (f" (+{d - b})" if d > b else ""))
    runs = f" ({len(small)} and {len(large)} runs)" if len(small) + len(large) > 2 else ""
    return f"peak RSS by process, {small[0]['reads'] / 1e6:g}M -> {large[0]['reads'] / 1e6:g}M reads{runs}: " + \
        ", ".join(parts)


def mean_run(runs: list[dict]) -> dict:
    """One set's runs as one: the mean of each tool's wall."""
    return {**runs[0], **{k: sum(r[k] for r in runs) / len(runs) for k in ("ours_s", "mm2_s")}}


def cost_lines(small: dict, large: dict, ranks: int) -> list[str]:
    """Dollars per million reads and per 30x human genome at the marginal rate between the
    two sets (fixed start-up left out), assuming every stage spreads over an instance's vCPUs
    as it did over this machine's ``ranks`` cores (collect, one process with a writer thread,
    does not: an optimistic projection for it)."""
    instances = load_instances(Path(__file__).with_name("instances.json"))
    core_s = (large["ours_s"] - small["ours_s"]) * ranks / (large["reads"] - small["reads"])
    mm2_core_s = (large["mm2_s"] - small["mm2_s"]) * 2 / (large["reads"] - small["reads"])
    out = [f"cost at this run's marginal rate: helixflow {core_s * 1e6:.0f} core-seconds per million reads "
           f"(minimap2 {mm2_core_s * 1e6:.0f}), projected onto each instance's vCPUs "
           f"(prices {instances['prices_as_of']}, {instances['price_kind']}); a 30x human genome is "
           f"{READS_PER_30X_HUMAN / 1e6:.0f}M reads",
           f"  {'instance':16s} {'vCPUs':>5s} {'$/hour':>7s} {'$/M reads':>10s} {'$/30x':>8s} {'minimap2 $/30x':>15s}"]
    for inst in instances["instances"]:
        per_m = core_s * 1e6 / inst["vcpus"] / 3600 * inst["usd_per_hour"]
        mm2 = mm2_core_s * 1e6 / inst["vcpus"] / 3600 * inst["usd_per_hour"]
        out.append(f"  {inst['type']:16s} {inst['vcpus']:5d} {inst['usd_per_hour']:7.3f} {per_m:10.4f} "
                   f"{per_m * READS_PER_30X_HUMAN / 1e6:8.2f} {mm2 * READS_PER_30X_HUMAN / 1e6:15.2f}")
    out.append(f"  anchor: about ${ANCHOR_USD_PER_30X} per 30x sample for a published GPU pipeline on AWS spot")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="dwgsim pairs per set, smallest first (default: 200k and 2M reads)")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path(".helixflow/bench-throughput"))
    parser.add_argument("--standing", action=argparse.BooleanOptionalAction, default=True,
                        help="run the sets again with a standing Prefect server and Ray cluster")
    parser.add_argument("--warm-up", type=int, default=10_000, metavar="PAIRS",
                        help="pairs of an untimed first run, which compiles the kernels into their cache as a "
                             "first run after installing does (0: none)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run every set N times, the sizes in turn: the peaks' range per process over the "
                             "runs, and the cost from the mean walls")
    parser.add_argument("--keep", action="store_true",
                        help="keep each set's helixflow staging folder and minimap2 SAM (removed once scored)")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    print(f"E. coli K-12 MG1655, dwgsim pairs (insert 350 +- 35; errors 0.2-1% R1, 0.3-1.5% R2); helixflow's CLI "
          f"(--ranks {args.ranks}, local backend, BAM + PAF) beside minimap2 -ax sr -t 2, same files, same run",
          flush=True)
    if args.warm_up:
        run_set(work, args.warm_up, args.ranks)
    sizes = sorted(args.pairs)
    results: dict[int, list[dict]] = {pairs: [] for pairs in sizes}
    for _ in range(max(args.repeat, 1)):
        for pairs in sizes:
            r = run_set(work, pairs, args.ranks, keep=args.keep)
            results[pairs].append(r)
            print("\n".join(report(r)), flush=True)
    if len(sizes) >= 2:
        small, large = results[sizes[0]], results[sizes[-1]]
        print(growth_line(small, large), flush=True)
        print("\n".join(cost_lines(mean_run(small), mean_run(large), args.ranks)), flush=True)
    if args.standing:
        with standing_services(work / "standing", args.ranks) as (extra, env):
            if args.warm_up:  # untimed: a served deployment's Ray has started its workers before
                run_set(work, args.warm_up, args.ranks, extra, env, STANDING)
            for pairs in sorted(args.pairs):
                print("\n".join(report(run_set(work, pairs, args.ranks, extra, env, STANDING, args.keep))),
                      flush=True)
    return 0
