#!/usr/bin/env bash
# Start or stop a local Prefect stack for helixflow: server (SQLite by default), the
# process work pool, every deployment in prefect.yaml, and one worker.
#   deployments/prefect/serve.sh up | down
# Settings (environment):
#   HELIXFLOW_PREFECT_PORT   server port (default 4200)
#   HELIXFLOW_PREFECT_STATE  folder for pid files, logs and, unless PREFECT_HOME is set,
#                            the SQLite database (default .helixflow/prefect)
#   PREFECT_SERVER_DATABASE_CONNECTION_URL  e.g. postgresql+asyncpg://user:pass@host:5432/prefect
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PY="${HELIXFLOW_PYTHON:-$ROOT/.venv/bin/python}"
PORT="${HELIXFLOW_PREFECT_PORT:-4200}"
STATE="${HELIXFLOW_PREFECT_STATE:-$ROOT/.helixflow/prefect}"
POOL="helixflow-local"
export PREFECT_HOME="${PREFECT_HOME:-$STATE/home}"
export PREFECT_API_URL="http://127.0.0.1:$PORT/api"
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1 RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled
export HELIXFLOW_HOME="$ROOT"
PREFECT=("$PY" -m prefect)

stop_pid() {  # stop the process group recorded in a pid file
  local file="$STATE/$1.pid"
  [ -f "$file" ] || return 0
  local pid; pid="$(cat "$file")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

wait_healthy() {
  for _ in $(seq 1 240); do
    if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('$PREFECT_API_URL/health', timeout=2)" 2>/dev/null; then
      return 0
    fi
    sleep 0.5
  done
  echo "prefect server did not answer on $PREFECT_API_URL/health; log: $STATE/server.log" >&2
  tail -20 "$STATE/server.log" >&2 || true
  return 1
}

up() {
  mkdir -p "$STATE" "$PREFECT_HOME"
  if [ -f "$STATE/server.pid" ] && kill -0 "$(cat "$STATE/server.pid")" 2>/dev/null; then
    echo "server already running (pid $(cat "$STATE/server.pid"))"
  else
    setsid "${PREFECT[@]}" server start --host 127.0.0.1 --port "$PORT" > "$STATE/server.log" 2>&1 < /dev/null &
    echo $! > "$STATE/server.pid"
  fi
  wait_healthy
  "${PREFECT[@]}" work-pool create "$POOL" --type process --overwrite > "$STATE/pool.log" 2>&1 \
    || { cat "$STATE/pool.log" >&2; return 1; }
  (cd "$ROOT" && "${PREFECT[@]}" deploy --all --no-prompt > "$STATE/deploy.log" 2>&1) \
    || { cat "$STATE/deploy.log" >&2; return 1; }
  if ! { [ -f "$STATE/worker.pid" ] && kill -0 "$(cat "$STATE/worker.pid")" 2>/dev/null; }; then
    # exec all the way down, so the recorded pid is the worker's and no shell holds our stdout
    (cd "$ROOT" && exec setsid "${PREFECT[@]}" worker start --pool "$POOL" --type process) \
      > "$STATE/worker.log" 2>&1 < /dev/null &
    echo $! > "$STATE/worker.pid"
  fi
  echo "Prefect UI: http://127.0.0.1:$PORT  (PREFECT_API_URL=$PREFECT_API_URL)"
}

down() {
  stop_pid worker
  stop_pid server
  echo "stopped"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
