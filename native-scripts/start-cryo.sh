#!/usr/bin/env bash
# Starts the cryo service in the background (these hosts have no systemd) and waits until it answers.
# Honours CRYO_LISTEN, CRYO_DATA_DIR and CRYO_TOKEN; logs to /var/log/cryo.log. With CRYO_ENGINE=podman it manages
# Podman's containers, and starts Podman's API service on CRYO_PODMAN_SOCKET when nothing answers there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=native-scripts/lib.sh
. "$here/lib.sh"

listen=${CRYO_LISTEN:-127.0.0.1:7070}
data=${CRYO_DATA_DIR:-/var/lib/cryo}
log=${CRYO_LOG:-/var/log/cryo.log}
pidfile=${CRYO_PIDFILE:-/run/cryo.pid}
health="http://${listen}/v1/health"

ensure_podman_service() {
  local socket=${CRYO_PODMAN_SOCKET:-/run/podman/podman.sock}
  local ping=(node -e "require('http').get({ socketPath: process.argv[1], path: '/_ping', timeout: 5000 },
    (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))" "$socket")
  if "${ping[@]}" >/dev/null 2>&1; then
    say "podman's service answers on $socket"
    return
  fi
  command -v podman >/dev/null || die "CRYO_ENGINE=podman, but podman is not installed (native-scripts/setup-host.sh installs it)"
  mkdir -p "$(dirname "$socket")"
  say "starting podman system service on $socket (log: /var/log/podman-service.log)"
  setsid nohup podman system service --time=0 "unix://$socket" >>/var/log/podman-service.log 2>&1 </dev/null &
  for _ in $(seq 1 40); do
    "${ping[@]}" >/dev/null 2>&1 && return
    sleep 0.5
  done
  die "podman's service did not answer on $socket within 20 s; see /var/log/podman-service.log"
}

answers() { node -e 'fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$health"; }

if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && answers; then
  say "cryo is already running (pid $(cat "$pidfile")) on $listen"
else
  [ -f "$repo/dist/src/main.js" ] || die "cryo is not built; run: npm ci && npm run build"
  [ "${CRYO_ENGINE:-docker}" != podman ] || ensure_podman_service
  say "starting cryo on $listen (data: $data, log: $log)"
  # A small young generation: a multi-GiB import's dead 64 KiB socket buffers are freed at the next scavenge
  # instead of piling up to V8's external-memory limit (about 60 MB more RSS).
  CRYO_LISTEN=$listen CRYO_DATA_DIR=$data setsid nohup node --max-semi-space-size=2 "$repo/dist/src/main.js" serve >>"$log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 1 60); do
    answers && break
    kill -0 "$(cat "$pidfile")" 2>/dev/null || die "cryo exited at start; see $log"
    sleep 0.5
  done
  answers || die "cryo did not answer on $health within 30 s; see $log"
fi
say "cryo answers: $(node -e 'fetch(process.argv[1]).then(r => r.text()).then(t => console.log(t))' "$health")"
if [ -z "${CRYO_TOKEN:-}" ]; then
  say "API token: $data/token   (curl -H \"Authorization: Bearer \$(cat $data/token)\" http://$listen/v1/checkpoints)"
fi
