"""Data-plane benchmark: ``python -m tasks.bench_data`` (``make bench-data``).

Generates N reads of 150 bp as FASTQ (plain and gzip), then measures, in the same run:
a plain single-process numpy parse of the file (the reference), and ingest + Ray encode +
stage through the Prefect tasks (MiB/s of FASTQ per core, driver and worker peak RSS
from a process-tree sampler); then a round trip of one object through two S3-compatible
servers on loopback (s3rver; Ceph's RADOS Gateway on a one-node cluster), multipart both
ways, with the client's and the server's CPU time.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

MIB = 2**20
READ_LEN = 150
RECORD = 1 + 10 + 1 + READ_LEN + 3 + READ_LEN + 1  # "@r%09d\n" seq "\n+\n" qual "\n"


def fastq_block(rng, ref: np.ndarray, first: int, n: int) -> bytes:
    """n fixed-width FASTQ records cut from ``ref`` with 0.6% substitutions, built in numpy."""
    rec = np.empty((n, RECORD), dtype=np.uint8)
    rec[:, 0] = ord("@")
    rec[:, 1] = ord("r")
    ids = np.arange(first, first + n)
    for d in range(9):
        rec[:, 10 - d] = ord("0") + (ids // 10**d) % 10
    rec[:, 11] = 10
    pos = rng.integers(0, ref.shape[0] - READ_LEN, n)
    seq = ref[pos[:, None] + np.arange(READ_LEN)]
    subs = rng.random(seq.shape) < 0.006
    seq[subs] = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, int(subs.sum()))]
    rec[:, 12:12 + READ_LEN] = seq
    rec[:, 12 + READ_LEN:15 + READ_LEN] = np.frombuffer(b"\n+\n", np.uint8)
    rec[:, 15 + READ_LEN:15 + 2 * READ_LEN] = ord("I")
    rec[:, -1] = 10
    return rec.tobytes()


def generate(out: Path, reads: int, seed: int) -> tuple[Path, Path]:
    plain, gz = out / f"reads_{reads}.fq", out / f"reads_{reads}.fq.gz"
    if plain.is_file() and plain.stat().st_size == reads * RECORD and gz.is_file():
        return plain, gz
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ref = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, 4_000_000)]
    with open(plain, "wb") as fp, gzip.open(gz, "wb", compresslevel=1) as fz:
        for first in range(0, reads, 200_000):
            block = fastq_block(rng, ref, first, min(200_000, reads - first))
            fp.write(block)
            fz.write(block)
    return plain, gz


def numpy_parse(buf: np.ndarray) -> int:
    """A plain numpy parse of strict four-line FASTQ: line ends, structure checks, the bases
    gathered and normalized through a lookup table, the names cut out. Returns the reads."""
    from tasks.fastx import NORMALIZE

    nl = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], nl[:-1] + 1))
    h, s, p, q = (starts[i::4] for i in range(4))
    s_len = nl[1::4] - s
    if not (np.all(buf[h] == 64) and np.all(buf[p] == 43) and np.all(s_len == nl[3::4] - q)):
        raise ValueError("not strict four-line FASTQ")
    first = np.repeat(np.cumsum(s_len) - s_len, s_len)
    bases = np.frombuffer(NORMALIZE, dtype=np.uint8)[buf[np.repeat(s, s_len) + (np.arange(int(s_len.sum())) - first)]]
    if np.any(bases == 0):
        raise ValueError("invalid base")
    names = [buf[a:b].tobytes().split(None, 1)[0] for a, b in zip((h + 1).tolist(), nl[0::4].tolist())]
    return len(names)


def numpy_parse_mb_s(path: Path) -> float:
    """The reference: one process reads the file (same chunk reader) and parses it with numpy."""
    from tasks.fastq_chunks import chunks

    t0 = time.perf_counter()
    size = 0
    for chunk in chunks(path, 50_000, 64):
        numpy_parse(chunk.read(path, scratch=True))  # one reused buffer, as the workers read
        size += chunk.length
    return size / MIB / (time.perf_counter() - t0)


def data_plane(path: Path, staging: Path, shard_size: int, workers: int) -> dict:
    from prefect import flow

    from tasks.bench_meter import TreeSampler
    from tasks.bench_run import task_intervals
    from tasks.encode import encode_reads
    from tasks.ingest import ingest_reads
    from tasks.ray_runtime import ray_connection
    from tasks.stage import run_root, stage_reads

    @flow(name="data-plane-benchmark")
    def run() -> dict:
        with ray_connection(None, workers):  # as in the align-reads flow: workers warm up during ingest
            reads = ingest_reads(str(path), str(staging))
            root = str(run_root(str(staging), reads.sha256, "", {"shard_size": shard_size, "bench": "data-plane"}))
            shards = encode_reads(reads, root, shard_size)
        stage_reads(root, reads, shards)
        return {"reads": sum(s["reads"] for s in shards), "shards": len(shards), "root": root}

    t0 = time.time()
    with TreeSampler(interval=0.2) as sampler:
        state = run(return_state=True)
    wall = time.time() - t0
    result = state.result()
    stages = {name: end - start for name, start, end in task_intervals(state.state_details.flow_run_id)}
    me = os.getpid()
    others = [(rss, name) for pid, (name, rss) in sampler.peak_by_pid.items() if pid != me]
    biggest = max(others, default=(0, "none"))
    shutil.rmtree(result["root"], ignore_errors=True)
    return {**result, "wall_s": wall, "stages": stages, "driver_peak_mib": sampler.peak_by_pid[me][1] / MIB,
            "worker_peak_mib": biggest[0] / MIB, "worker_peak_name": biggest[1]}


def _cpu_seconds(pids: list[int]) -> float:
    """CPU time of these processes and their children (s3rver may run several Node
    processes; Ceph runs a mon, an osd and radosgw)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def multipart_phases(client, src: Path, part_mb: int, threads: int) -> tuple[float, float]:
    """Seconds to upload ``src`` in parts (``threads`` at a time), and to complete the upload:
    how much of an upload's time is the server joining the parts."""
    from concurrent.futures import ThreadPoolExecutor

    size, part = src.stat().st_size, part_mb * MIB
    t0 = time.perf_counter()
    upload = client.create_multipart_upload(Bucket="bench", Key="phases")["UploadId"]

    def put(i: int) -> dict:
        with open(src, "rb") as fh:
            fh.seek(i * part)
            body = fh.read(part)
        etag = client.upload_part(Bucket="bench", Key="phases", UploadId=upload, PartNumber=i + 1, Body=body)["ETag"]
        return {"PartNumber": i + 1, "ETag": etag}

    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(put, range((size + part - 1) // part)))
    t1 = time.perf_counter()
    client.complete_multipart_upload(Bucket="bench", Key="phases", UploadId=upload, MultipartUpload={"Parts": parts})
    return t1 - t0, time.perf_counter() - t1


SERVERS = ("s3rver", "rgw", "moto")


def _start_server(server: str, processes: int, data_dir: Path, work: Path):
    """(endpoint URL, the server's pids, stop, (access key, secret)) for ``server``."""
    from tasks.s3_local import RGW_KEYS, S3RVER_KEY, rgw_pids, start_moto, start_rgw, start_s3rver, stop_rgw

    if server == "rgw":
        import tempfile

        # Ceph's admin sockets live under the data folder: a short path keeps them under the
        # 107 characters a Unix socket path may have
        short = Path(tempfile.mkdtemp(prefix="hf-rgw-"))

        def stop_cluster() -> None:
            stop_rgw(short)
            shutil.rmtree(short, ignore_errors=True)

        try:
            url = start_rgw(short, work / "rgw.log")
        except BaseException:
            shutil.rmtree(short, ignore_errors=True)
            raise
        return url, lambda: rgw_pids(short), stop_cluster, RGW_KEYS
    if server == "s3rver":
        proc, url = start_s3rver(data_dir, work / "s3rver.log", processes)
        keys = (S3RVER_KEY, S3RVER_KEY)
    elif server == "moto":
        proc, url = start_moto(work / "moto.log")
        keys = ("testing", "testing")
    else:
        raise ValueError(f"server must be one of {', '.join(SERVERS)}, not {server!r}")

    def stop() -> None:
        proc.terminate()
        proc.wait(timeout=30)

    return url, lambda: [proc.pid], stop, keys


def s3_round_trip(size_mb: int, work: Path, server: str = "s3rver", processes: int = 1, repeats: int = 1) -> dict:
    """Upload one object of ``size_mb`` MiB through :func:`tasks.storage.publish` and fetch
    it back through :func:`tasks.storage.fetch` (multipart both ways) against ``server``
    (s3rver, rgw or moto) on loopback, ``repeats`` times on one server start; checks the bytes
    came back the same and counts the client's and the server's CPU seconds. Figures are the
    medians over the repeats; ``round_trips_mb_s`` lists each."""
    import hashlib
    import resource

    from hpc.manifest import sha256_file
    from tasks.storage import S3Settings, fetch, publish, s3_client

    src = work / "object.bin"
    digest = hashlib.sha256()
    with open(src, "wb") as fh:
        block = np.random.default_rng(3).integers(0, 256, 64 * MIB, dtype=np.uint8).tobytes()
        for _ in range(max(1, size_mb // 64)):
            fh.write(block)
            digest.update(block)
    size = src.stat().st_size / MIB
    data_dir = work / f"{server}-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    url, pids, stop, (key, secret) = _start_server(server, processes, data_dir, work)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1")

    def client_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    runs = []
    try:
        settings = S3Settings(endpoint_url=url)
        client = s3_client(settings)
        client.create_bucket(Bucket="bench")
        # the first write makes the server's one-time set-up (radosgw creates its data pools)
        client.put_object(Bucket="bench", Key="warm-up", Body=b"x")
        client.delete_object(Bucket="bench", Key="warm-up")
        for i in range(repeats):
            shutil.rmtree(work / "fsx", ignore_errors=True)  # fetch skips a copy it already holds
            c0, s0, t0 = client_cpu(), _cpu_seconds(pids()), time.perf_counter()
            [uri] = publish([src], f"s3://bench/run{i}", settings)
            up = time.perf_counter() - t0
            c1, s1, t0 = client_cpu(), _cpu_seconds(pids()), time.perf_counter()
            local = fetch(uri, work / "fsx", settings)
            down = time.perf_counter() - t0
            c2, s2 = client_cpu(), _cpu_seconds(pids())
            runs.append({"up_mb_s": size / up, "down_mb_s": size / down, "round_trip_mb_s": size / (up + down),
                         "same_bytes": sha256_file(local) == digest.hexdigest(),
                         "client_cpu_up_s": c1 - c0, "client_cpu_down_s": c2 - c1,
                         "server_cpu_up_s": s1 - s0, "server_cpu_down_s": s2 - s1})
            client.delete_object(Bucket="bench", Key=uri.removeprefix("s3://bench/"))
        parts_s, complete_s = multipart_phases(client, src, settings.multipart_chunk_mb, settings.max_concurrency)
    finally:
        stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    src.unlink()
    shutil.rmtree(work / "fsx", ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    median = {k: float(np.median([r[k] for r in runs])) for k in runs[0] if k != "same_bytes"}
    return {"server": server, "processes": processes, "mib": size, **median,
            "same_bytes": all(r["same_bytes"] for r in runs), "round_trips_mb_s": [r["round_trip_mb_s"] for r in runs],
            "parts_s": parts_s, "complete_s": complete_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.bench_data", description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=10_000_000, help="reads for the data plane (0 skips it)")
    parser.add_argument("--shard-size", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--s3-mb", type=int, default=1024, help="object size for the S3 round trip (0 skips)")
    parser.add_argument("--s3-repeats", type=int, default=3, help="round trips per S3 server (medians printed)")
    parser.add_argument("--work", type=Path, default=Path(".helixflow/bench-data"))
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args(argv)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.reads:
        data_plane_report(work, args.reads, args.seed, args.shard_size, args.workers)
    if args.s3_mb:
        s3_report(work, args.s3_mb, args.s3_repeats)
    return 0


def data_plane_report(work: Path, reads: int, seed: int, shard_size: int, workers: int) -> None:
    t0 = time.perf_counter()
    plain, gz = generate(work, reads, seed)
    print(f"data: {reads:,} reads of {READ_LEN} bp, {plain.stat().st_size / MIB:,.0f} MiB FASTQ "
          f"({gz.stat().st_size / MIB:,.0f} MiB gzip); generated in {time.perf_counter() - t0:.0f} s; "
          f"{os.cpu_count()} CPUs, {workers} Ray workers", flush=True)
    base = numpy_parse_mb_s(plain)
    print(f"reference: single-process numpy parse of the plain file: {base:7.1f} MiB/s", flush=True)
    fastq_mib = plain.stat().st_size / MIB
    cores = os.cpu_count() or 1
    for label, path in (("plain", plain), ("gzip", gz)):
        r = data_plane(path, work / "fsx", shard_size, workers)
        enc = r["stages"].get("encode-reads", float("nan"))
        print(f"{label:5s} ingest+encode+stage: {r['reads']:,} reads, {r['shards']} shards, wall {r['wall_s']:.1f} s "
              f"(ingest {r['stages'].get('ingest-reads', 0):.1f}, encode {enc:.1f}, stage "
              f"{r['stages'].get('stage-reads', 0):.1f}); encode {fastq_mib / enc:.1f} MiB/s of FASTQ = "
              f"{fastq_mib / enc / cores:.1f} MiB/s per core ({fastq_mib / enc / cores / base:.2f}x "
              f"the reference); driver peak RSS {r['driver_peak_mib']:.0f} MiB, largest other process "
              f"{r['worker_peak_mib']:.0f} MiB ({r['worker_peak_name']})", flush=True)


def s3_report(work: Path, size_mb: int, repeats: int) -> None:
    """Round trips of one ``size_mb`` object through s3rver and through radosgw."""
    # moto is left out: its ranged GETs cost CPU in proportion to the whole object (a 1-GiB
    # download in 16-MiB parts took it 67 CPU s). s3rver keeps objects in files and joins a
    # multipart upload by rewriting it (one JavaScript thread); Ceph's radosgw, the gateway of
    # a production object store, writes parts once and completes an upload in its metadata
    for server in ("s3rver", "rgw"):
        s3 = s3_round_trip(size_mb, work, server, repeats=repeats)
        mib = s3["mib"]
        what = "Ceph radosgw (one-node cluster, memstore OSD)" if server == "rgw" else "s3rver (1 process)"
        each = ", ".join(f"{v:.0f}" for v in s3["round_trips_mb_s"])
        print(f"S3 {what} on loopback, {mib:.0f} MiB, median of {len(s3['round_trips_mb_s'])}: "
              f"up {s3['up_mb_s']:.0f} MiB/s, down {s3['down_mb_s']:.0f} MiB/s, round trip (up + down) "
              f"{s3['round_trip_mb_s']:.0f} MiB/s (each: {each}); same bytes back: {s3['same_bytes']}; "
              "CPU s per GiB up/down: "
              f"client {s3['client_cpu_up_s'] * 1024 / mib:.1f}/{s3['client_cpu_down_s'] * 1024 / mib:.1f}, "
              f"server {s3['server_cpu_up_s'] * 1024 / mib:.1f}/{s3['server_cpu_down_s'] * 1024 / mib:.1f}; "
              f"the upload again by hand: parts {s3['parts_s']:.1f} s, completing it {s3['complete_s']:.1f} s",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
