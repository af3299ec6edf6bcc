# Sourced by the benchmarks that run the whole daemon (`source bench/daemon.sh` after setting
# `bin` to the `switchyard` binary): a work directory removed on exit together with every
# process it started, free loopback ports, and `switchyard serve` started and waited for.

work=$(mktemp -d)

# On exit: `serve` (pid in $work/pid) gets SIGINT, which also stops its local proxy and its
# releases; every other process whose pid is in $work/*.pid gets SIGTERM.
bench_cleanup() {
  [ -s "$work/pid" ] && kill -INT "$(cat "$work/pid")" 2>/dev/null || true
  for f in "$work"/*.pid; do
    [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
  done
  sleep 1
  rm -rf "$work"
}
trap bench_cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_serve PORT [ARG...]: `switchyard serve` on 127.0.0.1:PORT with its data in $work/data and
# ARGs added (the caller's environment passes through), waits until it answers, and points the
# CLI at it with the admin token.
start_serve() {
  "$bin" serve --data-dir "$work/data" --listen "127.0.0.1:$1" "${@:2}" >"$work/serve.log" 2>&1 &
  echo $! >"$work/pid"
  for _ in $(seq 100); do
    [ -s "$work/data/admin.token" ] && curl -fs "http://127.0.0.1:$1/health" >/dev/null && break
    sleep 0.1
  done
  SWITCHYARD_SERVER="http://127.0.0.1:$1"
  SWITCHYARD_TOKEN=$(cat "$work/data/admin.token")
  export SWITCHYARD_SERVER SWITCHYARD_TOKEN SWITCHYARD_CONFIG=/nonexistent
}
