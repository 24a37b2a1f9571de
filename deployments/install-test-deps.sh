#!/usr/bin/env bash
# System packages the tests need, installed when missing (Debian, as root): Chromium for
# the Prefect UI browser test, samtools to read our SAM; s3rver (Node) and Ceph's RADOS
# Gateway, the other S3-compatible servers the S3 tests talk to.
set -euo pipefail
bash "$(dirname "$0")/s3rver/install.sh"
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
