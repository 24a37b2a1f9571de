"""The align-reads flow: ingest -> Ray encode/index/seed -> stage -> MPI kernel -> collect.

Run it as ``python -m flows.pipeline --reads R.fq.gz --reference ref.fa [--ranks 2 ...]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # the CLI: Prefect's temporary API server starts before the imports below (seconds)
    from tasks.runtime.api_server import start_early_server

    start_early_server(sys.argv[1:])

from prefect import flow
from prefect.runtime import flow_run

from flows.params import PipelineParams, command_line, helixflow_version, parse_cli, quiet_exit, run_samples
from hpc.process import end_process, fixed_mmap_threshold
from hpc.run_folder import RESULTS
from tasks.align import run_alignment
from tasks.genomics.merge import SampleOutputs
from tasks.genomics.sam import ReadGroup
from tasks.genomics.samplesheet import SampleSpec, file_stems
from tasks.collect import collect_results, record_stages
from tasks.encode import encode_reads
from tasks.export import export_results
from tasks.ingest import IngestedReference, ingest_reads, ingest_reference, require_qualities
from tasks.runtime.owner import RunFolderOwner
from tasks.runtime.ray_cluster import ray_connection
from tasks.runtime.stages import StageClock
from tasks.runtime.startup import server_ready, started_together
from tasks.seed import build_reference_index, candidate_windows, require_bam_contigs
from tasks.stage import pair_key, run_root, stage_run
from tasks.storage.index_cache import IndexFiles
from tasks.storage.uri import parse_uri


def _run_name() -> str:
    params = flow_run.parameters.get("params") or {}
    if isinstance(params, PipelineParams):
        params = params.model_dump()
    reads = Path(str(params.get("reads") or params.get("samplesheet") or "reads")).name
    reference = Path(str(params.get("reference", "reference"))).name
    return f"align {reads} -> {reference} [{params.get('backend', 'auto')}, {params.get('ranks', 2)} ranks]"


def _sample_run_name() -> str:
    sample = flow_run.parameters.get("sample")
    name = sample.name if isinstance(sample, SampleSpec) else (sample or {}).get("name", "sample")
    return f"sample {name}"


@flow(name="align-sample", flow_run_name=_sample_run_name, log_prints=True)
def align_sample(params: PipelineParams, sample: SampleSpec, stem: str, reference: IngestedReference,
                 index: IndexFiles) -> dict:
    """One sample: ingest, encode and seed (on the Ray of the parent flow), stage, align,
    collect; outputs named ``<stem>.*`` under the output folder."""
    settings = params.run_settings(index.seeding)
    fixed_mmap_threshold()  # the driver frees chunk and shard arrays in turn (collect too): their pages go back
    clock = StageClock()
    with RunFolderOwner() as owner:  # one run at a time in a run folder, from encode to collect
        with clock.stage("ingest reads"):
            reads = ingest_reads(sample.fastq_1, params.staging_dir, params.s3)
            mate2 = ingest_reads(sample.fastq_2, params.staging_dir, params.s3) if sample.fastq_2 else None
        if params.bam:
            require_qualities(reads)
        key = reads.sha256 if mate2 is None and not sample.interleaved else \
            pair_key(reads.sha256, mate2.sha256 if mate2 else None)
        root = owner.claim(run_root(params.staging_dir, key, reference.sha256, settings))
        with clock.stage("encode (Ray)"):
            shards = encode_reads(reads, root, params.shard_size, params.shard_mb, params.qualities, mate2,
                                  sample.interleaved)
        with clock.stage("candidate windows (Ray)"):
            candidates = candidate_windows(index, root, shards, params.max_candidates)
        with clock.stage("stage"):
            staged = stage_run(root, reads, reference, index, shards, candidates, settings, mate2)
        with clock.stage(f"align job ({params.backend})"):
            aligned = run_alignment(staged, params.ranks, params.backend, params.kernel, params.launcher,
                                    params.partition, params.time_limit, params.max_resubmits, params.mode,
                                    params.pending_timeout)
        to_s3 = parse_uri(params.output).is_s3
        output = str(Path(staged.manifest).parent / RESULTS) if to_s3 else params.output
        spec = SampleOutputs(sample.name, stem, ReadGroup(sample.name, sample.name, sample.platform, sample.library),
                             params.bam, params.sam, helixflow_version(), command_line(params))
        with clock.stage("collect"):
            summary = collect_results(staged, aligned, output, spec)
        summary = record_stages(summary, clock.rows, aligned)
    return export_results(summary, params.output, params.s3) if to_s3 else summary


@flow(name="align-reads", flow_run_name=_run_name, log_prints=True)
def align_reads(params: PipelineParams) -> dict:
    """Align reads to a reference: one sample (``reads``), or every sample of a samplesheet,
    each as an ``align-sample`` subflow sharing one reference index. Returns the sample's
    summary, or for a samplesheet ``{"samples": [summary, ...]}``."""
    samples = run_samples(params)  # a bad samplesheet fails before anything starts
    stems = file_stems(samples)
    with ray_connection(params.ray_address, params.ray_workers):  # workers warm up while inputs are hashed
        reference = ingest_reference(params.reference, params.staging_dir, params.s3)
        # The reference first: a bad one fails the run before any read is encoded.
        index = build_reference_index(reference, params.kmer, params.minimizer_window, params.staging_dir,
                                      params.index_memory_gb)
        if params.bam:
            require_bam_contigs(index)
        summaries = [align_sample(params, sample, stem, reference, index) for sample, stem in zip(samples, stems)]
    return {"samples": summaries} if params.samplesheet else summaries[0]


def main(argv: list[str] | None = None) -> int:
    params = parse_cli(PipelineParams, argv, "python -m flows.pipeline")
    try:
        run_samples(params)
        together = started_together(params.ray_address, params.ray_workers)
    except Exception:  # noqa: BLE001 - a bad samplesheet: the flow run fails on it and says so
        together = server_ready()
    try:
        with together:  # Prefect's temporary API server and Ray start side by side
            summary = align_reads(params)
    except Exception as exc:  # noqa: BLE001 - the flow run is already Failed; say why and exit 1
        quiet_exit()
        first, _, details = str(exc).partition("\n")
        if details:  # tails of the job's logs first; the last line says what failed
            print(details, file=sys.stderr)
        print(f"helixflow: align-reads failed: {first}", file=sys.stderr)
        return 1
    quiet_exit()
    for one in summary.get("samples", [summary]):
        if one.get("bam"):
            print(f"BAM:     {one['bam']}")
        print(f"PAF:     {one['paf']}")
        print(f"summary: {one['summary']}")
        qc = one["qc"]
        pairs = f"  properly paired: {qc['properly_paired']}" if qc["paired"] else ""
        correct = f"  fraction correctly placed: {one['accuracy']['fraction_correct']:.4f}" if one["accuracy"] else ""
        print(f"sample {one['sample']}: reads: {one['reads']}  mapped: {one['mapped']}  unmapped: {one['unmapped']}"
              f"{pairs}{correct}")
    return 0


if __name__ == "__main__":
    end_process(main())  # the exit handlers run (the server stops); Python's teardown of the modules is skipped
