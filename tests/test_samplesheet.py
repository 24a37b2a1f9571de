"""Samplesheets as nf-core pipelines take them: columns, rows, files, names; every error
names the file and the line."""

import pytest

from tasks.genomics.samplesheet import (SampleSpec, SamplesheetError, file_stems, parse_samplesheet,
                                        sample_name_from_path)


@pytest.fixture()
def fastqs(tmp_path):
    for name in ("a_R1.fq.gz", "a_R2.fq.gz", "b.fq", "my reads.fq"):
        (tmp_path / name).write_bytes(b"@r\nA\n+\nI\n")
    return tmp_path


def sheet(folder, text):
    path = folder / "samples.csv"
    path.write_text(text)
    return text, str(path)


def test_rows_become_samples_with_paths_from_the_sheets_folder(fastqs):
    text, path = sheet(fastqs, "sample,fastq_1,fastq_2\nA,a_R1.fq.gz,a_R2.fq.gz\n\nB,b.fq,\nC d/e,my reads.fq,\n")
    samples = parse_samplesheet(text, path, fastqs)
    assert [s.name for s in samples] == ["A", "B", "C d/e"]
    assert samples[0] == SampleSpec("A", str(fastqs / "a_R1.fq.gz"), str(fastqs / "a_R2.fq.gz"), line=2)
    assert samples[0].paired and not samples[1].paired and samples[1].fastq_2 is None
    assert samples[2].fastq_1 == str(fastqs / "my reads.fq") and samples[2].line == 5
    assert file_stems(samples) == ["A", "B", "C_d_e"]


def test_columns_in_any_order_with_library_and_platform(fastqs):
    text, path = sheet(fastqs, "fastq_2,sample,fastq_1,library,platform\n,B,b.fq,lib7,ONT\n")
    (one,) = parse_samplesheet(text, path, fastqs)
    assert (one.name, one.library, one.platform) == ("B", "lib7", "ONT")


@pytest.mark.parametrize("text, line, words", [
    ("sample,fastq_1,fastq_2,extra\nA,b.fq,,x\n", 1, "unknown column 'extra'"),
    ("sample,fastq_1\nA,b.fq\n", 1, "missing column 'fastq_2'"),
    ("sample,fastq_1,fastq_2\nA,b.fq,\nA,my reads.fq,\n", 3, "sample 'A' is listed again (first on line 2)"),
    ("sample,fastq_1,fastq_2\nA,missing.fq,\n", 2, "fastq_1 'missing.fq': file not found"),
    ("sample,fastq_1,fastq_2\nA,b.fq,gone_R2.fq\n", 2, "fastq_2 'gone_R2.fq': file not found"),
    ("sample,fastq_1,fastq_2\n,b.fq,\n", 2, "the sample column is empty"),
    ("sample,fastq_1,fastq_2\nA,,\n", 2, "fastq_1 is empty"),
    ("sample,fastq_1,fastq_2\nA,b.fq\n", 2, "has 2 fields; expected 3"),
    ("sample,fastq_1,fastq_2\nA,b.fq,b.fq\n", 2, "fastq_1 and fastq_2 are the same file"),
    ("sample,fastq_1,fastq_2\n", 1, "lists no samples"),
    ("", None, "is empty"),
])
def test_a_bad_samplesheet_names_its_line(fastqs, text, line, words):
    text, path = sheet(fastqs, text)
    with pytest.raises(SamplesheetError) as err:
        parse_samplesheet(text, path, fastqs)
    assert err.value.line == line and words in err.value.message
    assert str(err.value).startswith(f"{path}:{line}: " if line else f"{path}: ")


def test_s3_files_are_not_checked_here(fastqs):
    text, path = sheet(fastqs, "sample,fastq_1,fastq_2\nA,s3://bucket/a_1.fq.gz,s3://bucket/a_2.fq.gz\n")
    (one,) = parse_samplesheet(text, path, fastqs)
    assert one.fastq_1 == "s3://bucket/a_1.fq.gz" and one.paired


def test_names_that_are_not_file_names_are_made_safe_and_unique():
    samples = [SampleSpec("a/b", "x"), SampleSpec("a b", "y"), SampleSpec("..hidden", "z"), SampleSpec("ok-1.2", "w")]
    assert file_stems(samples) == ["a_b_1", "a_b_2", "hidden", "ok-1.2"]


@pytest.mark.parametrize("path, paired, name", [
    ("/data/run1/NA12878_R1.fastq.gz", True, "NA12878"), ("reads.fq.gz", False, "reads"),
    ("s3://b/k/sample_1.fq", True, "sample"), ("x.fasta", False, "x"), ("lib_R1_001.fastq.gz", True, "lib"),
])
def test_the_sample_name_of_reads_is_the_file_name(path, paired, name):
    assert sample_name_from_path(path, paired) == name
