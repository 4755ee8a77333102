#!/usr/bin/env bash
# Run the registry as a small cluster on this machine: N `vru serve` processes on 127.0.0.1 behind
# a private nginx (sticky sessions, WebSocket upgrade), against the PostgreSQL database in
# $VRU_DATABASE_URL. Called by `make deploy-local` / `make deploy-stop`; see README, "Deploying".
#
#   deploy/deploy.sh start WORKERS PORT   migrate, start the processes on PORT+1.., nginx on PORT
#   deploy/deploy.sh stop                 stop nginx, then the processes (pid files in the run dir)
#   deploy/deploy.sh status               each process's health, and the proxy's
#
# Everything it starts keeps its pid file and log in $VRU_RUN_DIR (default deploy/run).
# Every process signs session cookies with the one VRU_SESSION_SECRET: the environment's, else one
# generated once into $VRU_RUN_DIR/session-secret (mode 0600) and reused by every later start.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
RUN_DIR="${VRU_RUN_DIR:-$PWD/deploy/run}"
NGINX="${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}"
VRU="${VRU:-vru}"
PYTHON="${PYTHON:-python3}"

say() { echo "deploy: $*"; }
die() { echo "deploy: error: $*" >&2; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$1/_stcore/health" >/dev/null 2>&1; }

wait_healthy() {  # port, what, log
  for _ in $(seq 1 90); do
    healthy "$1" && return 0
    sleep 1
  done
  tail -n 20 "$3" >&2 || true
  die "$2 did not answer on http://127.0.0.1:$1/_stcore/health within 90 s (log: $3)"
}

ensure_nginx() {
  [ -x "$NGINX" ] && return 0
  say "nginx is missing; installing Debian's nginx with apt-get"
  command -v apt-get >/dev/null || die "nginx is not installed and there is no apt-get here"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
  NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
  [ -x "$NGINX" ] || die "nginx did not install"
}

share_session_secret() {
  # One secret for every process, so a session made through one is valid in all of them.
  if [ -z "${VRU_SESSION_SECRET:-}" ]; then
    local file="$RUN_DIR/session-secret"
    if [ ! -s "$file" ]; then
      (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))' >"$file")
      say "generated the session secret in $file"
    fi
    chmod 600 "$file"
    VRU_SESSION_SECRET="$(cat "$file")"
  fi
  [ "${#VRU_SESSION_SECRET}" -ge 32 ] || die "VRU_SESSION_SECRET must be at least 32 characters"
  export VRU_SESSION_SECRET
}

start() {
  local workers="${1:-2}" port="${2:-8640}"
  [[ "$workers" =~ ^[1-9][0-9]*$ ]] || die "WORKERS must be a whole number of processes, got '$workers'"
  [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ $((port + workers)) -le 65535 ] \
    || die "PORT must leave room for the processes on PORT+1..PORT+$workers, got '$port'"
  case "${VRU_DATABASE_URL:-}" in
    postgresql://* | postgres://* | postgresql+*) ;;
    "") die "set VRU_DATABASE_URL to the PostgreSQL database to serve (postgresql://user@host/db)" ;;
    *) die "several processes need PostgreSQL; VRU_DATABASE_URL names another kind of database" ;;
  esac
  mkdir -p "$RUN_DIR/nginx-tmp"
  for pidfile in "$RUN_DIR"/*.pid; do
    alive "$pidfile" && die "already running ($pidfile); run \`make deploy-stop\` first"
  done
  rm -f "$RUN_DIR"/*.pid
  ensure_nginx
  share_session_secret

  say "migrating the database"
  "$VRU" db upgrade

  for i in $(seq 1 "$workers"); do
    local app_port=$((port + i))
    healthy "$app_port" && die "port $app_port is already serving something; choose another PORT"
    # Its own process group, so `stop` ends the server and Streamlit under it together.
    setsid "$VRU" serve --address 127.0.0.1 --port "$app_port" >"$RUN_DIR/app-$i.log" 2>&1 &
    echo $! >"$RUN_DIR/app-$i.pid"
    echo "$app_port" >"$RUN_DIR/app-$i.port"
  done
  for i in $(seq 1 "$workers"); do
    wait_healthy $((port + i)) "app process $i" "$RUN_DIR/app-$i.log"
  done

  "$PYTHON" -m deploy.render local --workers "$workers" --port "$port" --run-dir "$RUN_DIR" >/dev/null
  local conf="$RUN_DIR/nginx.conf"
  "$NGINX" -t -q -p "$RUN_DIR" -e "$RUN_DIR/nginx-error.log" -c "$conf"
  "$NGINX" -p "$RUN_DIR" -e "$RUN_DIR/nginx-error.log" -c "$conf"
  wait_healthy "$port" "nginx" "$RUN_DIR/nginx-error.log"
  say "serving on http://127.0.0.1:$port (nginx) -> $workers app processes on 127.0.0.1:$((port + 1))-$((port + workers))"
}

stop_group() {  # pidfile: TERM the process group, wait up to 20 s, then KILL
  local pid
  pid="$(cat "$1")"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  say "$(basename "$1" .pid) did not stop within 20 s; killing it"
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
}

stop() {
  [ -d "$RUN_DIR" ] || { say "nothing to stop"; return 0; }
  if alive "$RUN_DIR/nginx.pid"; then
    # QUIT: finish the requests in flight, then exit.
    kill -QUIT "$(cat "$RUN_DIR/nginx.pid")"
    for _ in $(seq 1 20); do alive "$RUN_DIR/nginx.pid" || break; sleep 0.5; done
    say "nginx stopped"
  fi
  for pidfile in "$RUN_DIR"/app-*.pid; do
    [ -f "$pidfile" ] || continue
    if alive "$pidfile"; then
      stop_group "$pidfile"
      say "$(basename "$pidfile" .pid) stopped"
    fi
    rm -f "$pidfile"
  done
  rm -f "$RUN_DIR/nginx.pid"
}

status() {
  local bad=0
  for pidfile in "$RUN_DIR"/app-*.pid; do
    [ -f "$pidfile" ] || continue
    local name port
    name="$(basename "$pidfile" .pid)"
    port="$(cat "$RUN_DIR/$name.port")"
    if alive "$pidfile" && healthy "$port"; then say "$name on $port: healthy"
    else say "$name on $port: NOT answering"; bad=1; fi
  done
  if alive "$RUN_DIR/nginx.pid"; then say "nginx: running"; else say "nginx: NOT running"; bad=1; fi
  return "$bad"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start WORKERS PORT | stop | status" >&2; exit 2 ;;
esac
