"""The align-reads flow: ingest -> Ray encode/index/seed -> stage -> MPI kernel -> collect.

Run it as ``python -m flows.pipeline --reads R.fq.gz --reference ref.fa [--ranks 2 ...]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from prefect import flow
from prefect.runtime import flow_run

from flows.params import PipelineParams, parse_cli, quiet_exit
from hpc.run_folder import RESULTS
from tasks.align import run_alignment
from tasks.collect import collect_results
from tasks.encode import encode_reads
from tasks.export import export_results
from tasks.ingest import ingest_reads, ingest_reference
from tasks.runtime.owner import RunFolderOwner
from tasks.runtime.ray_cluster import ray_connection
from tasks.seed import build_reference_index, candidate_windows
from tasks.stage import run_root, stage_run
from tasks.storage.uri import parse_uri


def _run_name() -> str:
    params = flow_run.parameters.get("params") or {}
    if isinstance(params, PipelineParams):
        params = params.model_dump()
    reads = Path(str(params.get("reads", "reads"))).name
    reference = Path(str(params.get("reference", "reference"))).name
    return f"align {reads} -> {reference} [{params.get('backend', 'auto')}, {params.get('ranks', 2)} ranks]"


@flow(name="align-reads", flow_run_name=_run_name, log_prints=True)
def align_reads(params: PipelineParams) -> dict:
    """Align reads to a reference; returns the summary (paths of the PAF and summary JSON)."""
    settings = params.run_settings()
    with RunFolderOwner() as owner:  # one run at a time in a run folder, from encode to collect
        with ray_connection(params.ray_address, params.ray_workers):  # workers warm up while inputs are hashed
            reference = ingest_reference(params.reference, params.staging_dir, params.s3)
            reads = ingest_reads(params.reads, params.staging_dir, params.s3)
            # The reference first: a bad one fails the run before any read is encoded.
            index = build_reference_index(reference, params.kmer, params.minimizer_window, params.staging_dir,
                                          params.index_memory_gb)
            root = owner.claim(run_root(params.staging_dir, reads.sha256, reference.sha256, settings))
            shards = encode_reads(reads, root, params.shard_size, params.shard_mb)
            candidates = candidate_windows(index, root, shards, params.max_candidates)
        staged = stage_run(root, reads, reference, index, shards, candidates, settings)
        aligned = run_alignment(staged, params.ranks, params.backend, params.kernel, params.launcher,
                                params.partition, params.time_limit, params.max_resubmits, params.mode,
                                params.pending_timeout)
        to_s3 = parse_uri(params.output).is_s3
        output = str(Path(staged.manifest).parent / RESULTS) if to_s3 else params.output
        summary = collect_results(staged, aligned, output, params.sam)
    return export_results(summary, params.output, params.s3) if to_s3 else summary


def main(argv: list[str] | None = None) -> int:
    params = parse_cli(PipelineParams, argv, "python -m flows.pipeline")
    try:
        summary = align_reads(params)
    except Exception as exc:  # noqa: BLE001 - the flow run is already Failed; say why and exit 1
        quiet_exit()
        first, _, details = str(exc).partition("\n")
        if details:  # tails of the job's logs first; the last line says what failed
            print(details, file=sys.stderr)
        print(f"helixflow: align-reads failed: {first}", file=sys.stderr)
        return 1
    quiet_exit()
    print(f"PAF:     {summary['paf']}")
    print(f"summary: {summary['summary']}")
    print(f"reads: {summary['reads']}  mapped: {summary['mapped']}  unmapped: {summary['unmapped']}")
    if summary["accuracy"]:
        print(f"fraction correctly placed: {summary['accuracy']['fraction_correct']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
