#!/usr/bin/env bash
# Starts dockerd when it does not answer (these hosts have no systemd), and restarts a running one that
# was started without experimental features. Waits until the daemon answers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=native-scripts/lib.sh
. "$here/lib.sh"

log=${DOCKERD_LOG:-/var/log/cryo-dockerd.log}

experimental() {
  [ "$(timeout 5 docker version --format '{{.Server.Experimental}}' 2>/dev/null)" = true ]
}

if docker_answers; then
  if experimental; then
    say "dockerd $(docker version --format '{{.Server.Version}}') is running with experimental features"
    exit 0
  fi
  command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1 &&
    { systemctl restart docker && say "restarted docker.service"; }
  if ! experimental; then
    pid=$(cat /var/run/docker.pid 2>/dev/null || pgrep -xo dockerd || true)
    [ -n "$pid" ] || die "dockerd answers without experimental features and its pid is unknown; restart it yourself"
    say "dockerd (pid $pid) runs without experimental features; restarting it"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
fi

if ! docker_answers; then
  command -v dockerd >/dev/null || die "dockerd is not installed"
  say "starting dockerd (log: $log)"
  # PATH keeps /usr/local/sbin first, so runc finds cryo's criu wrapper.
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin setsid nohup dockerd >>"$log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    docker_answers && break
    sleep 0.5
  done
  docker_answers || die "dockerd did not answer within 60 s; see $log"
fi
experimental || die "dockerd answers but experimental features are off; check /etc/docker/daemon.json"
say "dockerd $(docker version --format '{{.Server.Version}}') answers, experimental features on"
