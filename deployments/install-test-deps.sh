#!/usr/bin/env bash
# System packages the tests need, installed when missing (Debian, as root): Chromium for
# the Prefect UI browser test, samtools to read our SAM, and Ceph's RADOS Gateway, the
# second S3-compatible server the S3 tests talk to (moto, the first, is a Python package).
# s3rver (Node) is only for `make bench-data`, which installs it itself.
set -euo pipefail
bash "$(dirname "$0")/ceph-rgw/rgw.sh" install
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v samtools >/dev/null 2>&1 || missing+=(samtools)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "need root to install: ${missing[*]} (or install them yourself)" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
