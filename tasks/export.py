"""Export task: copy the results to an ``s3://`` output prefix."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from tasks.runtime.options import IO_TASK
from tasks.storage.s3 import S3Settings, publish


def result_files(summary: dict) -> list[Path]:
    """The sample's files: PAF, BAM and its index, SAM, summary and plots, those written."""
    summary_path = Path(summary["summary"])
    folder, stem = summary_path.parent, summary_path.name.removesuffix(".summary.json")
    paths = [Path(summary["paf"]), summary_path, folder / f"{stem}.qc.png", folder / f"{stem}.accuracy_by_mapq.png"]
    if summary.get("bam"):
        paths += [Path(summary["bam"]), Path(summary["bam"] + ".bai")]
    if summary.get("sam"):
        paths.append(Path(summary["sam"]))
    return [p for p in paths if p.is_file()]


@task(name="export-results", **IO_TASK)
def export_results(summary: dict, output_uri: str, s3: S3Settings) -> dict:
    """Upload PAF, BAM, SAM, summary and plots under ``output_uri``; the summary gains their URIs."""
    uris = publish(result_files(summary), output_uri, s3)
    get_run_logger().info("exported %d files to %s", len(uris), output_uri)
    create_markdown_artifact(key="exported-results", markdown="### Results on S3\n\n" + "".join(f"- `{u}`\n" for u in uris),
                             description=f"Results exported to {output_uri}")
    return {**summary, "exported": uris}
