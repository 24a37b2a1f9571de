#!/usr/bin/env bash
# s3rver (a file-system-backed S3-compatible server, Node) for the loopback S3 benchmark and
# tests: installs Node and npm from Debian when missing (as root), then the pinned packages
# of package-lock.json into deployments/s3rver/node_modules.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then
    echo "need root to install nodejs and npm (or install them yourself)" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ ! -f "$here/node_modules/s3rver/package.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
