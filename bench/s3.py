"""S3 part of ``make bench-data``: the pipeline's publish/fetch against plain boto3 on loopback S3 servers."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from hpc.files import MIB


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


SERVERS = ("s3rver", "rgw", "moto")


def _start_server(server: str, processes: int, data_dir: Path, work: Path):
    """(endpoint URL, the server's pids, stop, (access key, secret), free the space of deleted
    objects) for ``server``."""
    from bench.s3_servers import (
        RGW_KEYS,
        S3RVER_KEY,
        rgw_collect_garbage,
        rgw_pids,
        start_moto,
        start_rgw,
        start_s3rver,
        stop_rgw,
    )

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
        return url, lambda: rgw_pids(short), stop_cluster, RGW_KEYS, lambda: rgw_collect_garbage(short)
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

    return url, lambda: [proc.pid], stop, keys, lambda: None


def s3_round_trip(size_mb: int, work: Path, server: str = "s3rver", processes: int = 1, repeats: int = 1) -> dict:
    """Round trips of one object of ``size_mb`` MiB against ``server`` (s3rver, rgw or moto) on
    loopback, ``repeats`` times on one server start: up through :func:`tasks.storage.s3.publish`
    and back through :func:`tasks.storage.s3.fetch`, each followed by the reference, plain boto3
    ``upload_file``/``download_file`` with the same ``TransferConfig`` (both run s3transfer's
    manager: the difference is what the pipeline adds, its HEADs, If-Match and temp file), the
    two in turn, first one then the other.
    Checks the bytes came back the same and counts the client's and the server's CPU seconds.
    Figures are medians over the repeats (``ref_`` for the reference); ``round_trips_mb_s``
    lists each of ours."""
    import hashlib
    import resource

    from hpc.files import sha256_file
    from tasks.storage.s3 import S3Settings, fetch, publish, s3_client, transfer_config

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
    url, pids, stop, (key, secret), collect = _start_server(server, processes, data_dir, work)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_DEFAULT_REGION="us-east-1")

    def client_cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    settings = S3Settings(endpoint_url=url)
    client = s3_client(settings)
    config = transfer_config(settings)

    def ours(name: str) -> tuple:
        return (lambda: publish([src], f"s3://bench/{name}", settings)[0].removeprefix("s3://bench/"),
                lambda k: fetch(f"s3://bench/{k}", work / "fsx", settings))

    def reference(name: str) -> tuple:
        def up() -> str:
            client.upload_file(str(src), "bench", f"{name}/{src.name}", Config=config)
            return f"{name}/{src.name}"

        def down(k: str) -> Path:
            (work / "fsx").mkdir(parents=True, exist_ok=True)
            client.download_file("bench", k, str(work / "fsx" / src.name), Config=config)
            return work / "fsx" / src.name
        return up, down

    def round_trip(up, down) -> dict:
        shutil.rmtree(work / "fsx", ignore_errors=True)  # fetch skips a copy it already holds
        c0, s0, t0 = client_cpu(), _cpu_seconds(pids()), time.perf_counter()
        k = up()
        t_up = time.perf_counter() - t0
        c1, s1, t0 = client_cpu(), _cpu_seconds(pids()), time.perf_counter()
        local = down(k)
        t_down = time.perf_counter() - t0
        c2, s2 = client_cpu(), _cpu_seconds(pids())
        same = sha256_file(local) == digest.hexdigest()
        client.delete_object(Bucket="bench", Key=k)
        collect()  # each round trip starts from the same server state
        return {"up_mb_s": size / t_up, "down_mb_s": size / t_down, "round_trip_mb_s": size / (t_up + t_down),
                "same_bytes": same, "client_cpu_up_s": c1 - c0, "client_cpu_down_s": c2 - c1,
                "server_cpu_up_s": s1 - s0, "server_cpu_down_s": s2 - s1}

    runs, refs = [], []
    try:
        client.create_bucket(Bucket="bench")
        # the first write makes the server's one-time set-up (radosgw creates its data pools)
        client.put_object(Bucket="bench", Key="warm-up", Body=b"x")
        client.delete_object(Bucket="bench", Key="warm-up")
        for i in range(repeats):
            # whichever goes second in a pair measured faster here: the order alternates
            pair = [(runs, ours(f"run{i}")), (refs, reference(f"ref{i}"))]
            for out, (up, down) in pair if i % 2 == 0 else pair[::-1]:
                out.append(round_trip(up, down))
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
    figures = [k for k in runs[0] if k != "same_bytes"]
    return {"server": server, "processes": processes, "mib": size,
            **{k: float(np.median([r[k] for r in runs])) for k in figures},
            **{f"ref_{k}": float(np.median([r[k] for r in refs])) for k in figures},
            "same_bytes": all(r["same_bytes"] for r in runs + refs),
            "round_trips_mb_s": [r["round_trip_mb_s"] for r in runs]}


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
        print(f"S3 {what} on loopback, {mib:.0f} MiB, median of {len(s3['round_trips_mb_s'])}; "
              f"same bytes back every time: {s3['same_bytes']}", flush=True)
        for label, p in (("helixflow (publish/fetch)", ""), ("reference: boto3 upload/download", "ref_")):
            rt = s3[f"{p}round_trip_mb_s"]
            print(f"  {label:34s} up {s3[p + 'up_mb_s']:4.0f} MiB/s, down {s3[p + 'down_mb_s']:4.0f} MiB/s, "
                  f"round trip (up + down) {rt:4.0f} MiB/s = {rt * MIB / 1e6:4.0f} MB/s"
                  + (f" (each: {each})" if not p else "") + "; CPU s per GiB up/down: client "
                  f"{s3[p + 'client_cpu_up_s'] * 1024 / mib:.1f}/{s3[p + 'client_cpu_down_s'] * 1024 / mib:.1f}, server "
                  f"{s3[p + 'server_cpu_up_s'] * 1024 / mib:.1f}/{s3[p + 'server_cpu_down_s'] * 1024 / mib:.1f}",
                  flush=True)
