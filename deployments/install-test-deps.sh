#!/usr/bin/env bash
# System packages the tests need, installed when missing (Debian, as root): Chromium for
# the Prefect UI browser test, samtools to read our SAM, dwgsim and ART (art_illumina,
# Illumina's empirical error profiles) to simulate paired reads, minimap2 beside which the
# mapping benchmarks run, Picard's ValidateSamFile (picard-tools) to check our BAM, and
# Ceph's RADOS Gateway, the second S3-compatible server the S3 tests talk to (moto, the
# first, is a Python package).
# Then a real genome: E. coli K-12 MG1655 from Debian's ragout-examples, unpacked (not
# installed) under .helixflow/data. s3rver (Node) is only for `make bench-data`.
set -euo pipefail
bash "$(dirname "$0")/ceph-rgw/rgw.sh" install
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v samtools >/dev/null 2>&1 || missing+=(samtools)
command -v dwgsim >/dev/null 2>&1 || missing+=(dwgsim)
command -v art_illumina >/dev/null 2>&1 || missing+=(art-nextgen-simulation-tools)
command -v minimap2 >/dev/null 2>&1 || missing+=(minimap2)
command -v PicardCommandLine >/dev/null 2>&1 || missing+=(picard-tools)
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "need root to install: ${missing[*]} (or install them yourself)" >&2
    exit 1
  fi
  apt-get update -qq
  updated=1
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
data="$(cd "$(dirname "$0")/.." && pwd)/.helixflow/data"
genome="$data/MG1655-K12.fasta.gz"
if [ ! -s "$genome" ]; then
  mkdir -p "$data/deb"
  [ "$updated" = 1 ] || apt-get update -qq
  (cd "$data/deb" && apt-get download -qq ragout-examples 2>/dev/null)
  dpkg -x "$data"/deb/ragout-examples_*.deb "$data/deb/x"
  cp "$data/deb/x/usr/share/doc/ragout/examples/E.Coli/references/MG1655-K12.fasta.gz" "$genome.tmp"
  mv "$genome.tmp" "$genome"
  rm -rf "$data/deb"
fi
