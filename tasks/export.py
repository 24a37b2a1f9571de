"""Export task: copy the results to an ``s3://`` output prefix."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from tasks.runtime.options import IO_TASK
from tasks.storage.s3 import S3Settings, publish


def result_files(summary: dict) -> list[Path]:
    folder = Path(summary["summary"]).parent
    names = [Path(summary["paf"]).name, "summary.json", "accuracy_by_mapq.png"]
    if summary.get("sam"):
        names.append(Path(summary["sam"]).name)
    return [folder / n for n in names if (folder / n).is_file()]


@task(name="export-results", **IO_TASK)
def export_results(summary: dict, output_uri: str, s3: S3Settings) -> dict:
    """Upload PAF, SAM, summary and plot under ``output_uri``; the summary gains their URIs."""
    uris = publish(result_files(summary), output_uri, s3)
    get_run_logger().info("exported %d files to %s", len(uris), output_uri)
    create_markdown_artifact(key="exported-results", markdown="### Results on S3\n\n" + "".join(f"- `{u}`\n" for u in uris),
                             description=f"Results exported to {output_uri}")
    return {**summary, "exported": uris}
