#!/usr/bin/env bash
# Runs a command against another Docker engine: Docker 26 or 28 from its private prefix
# (install-docker-engine.sh), as a dockerd of its own in a network namespace of its own, so that its bridge,
# iptables rules and published ports never meet the host dockerd's. The command runs in that namespace with
# DOCKER_HOST and cryo's CRYO_DOCKER_* variables pointing at the engine; the engine is removed afterwards.
# Usage: with-engine.sh 26|28 [--containerd-store] -- COMMAND...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=native-scripts/lib.sh
. "$here/lib.sh"

version=${1:-}
shift || true
engine_suite "$version" >/dev/null || die "usage: $0 26|28 [--containerd-store] -- COMMAND..."
store=""
if [ "${1:-}" = --containerd-store ]; then
  store=--containerd-store
  shift
fi
[ "${1:-}" = -- ] && shift
[ "$#" -gt 0 ] || die "no command given"
prefix=$(engine_prefix "$version")
"$here/install-docker-engine.sh" "$version" >/dev/null

# CRYO_ENGINE_TAG tells apart two runs of the same engine at once.
name="cryo-engine-$version${store:+-ctrd}${CRYO_ENGINE_TAG:+-$CRYO_ENGINE_TAG}"
netns=$name
root=/var/lib/$name
exec_root=/run/$name
socket=/run/$name.sock
config=/run/$name.json
log=/var/log/$name.log
engine_path="$prefix/usr/sbin:$prefix/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Removes this engine's daemon, its containers, mounts, directories and namespace: after a run, and before one
# that finds a killed run's leftovers.
teardown() {
  if [ -S "$socket" ]; then
    ids=$(docker -H "unix://$socket" ps -aq 2>/dev/null || true)
    [ -z "$ids" ] || docker -H "unix://$socket" rm -f $ids >/dev/null 2>&1 || true
  fi
  if [ -f "/run/$name.pid" ]; then
    pid=$(cat "/run/$name.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  umount -R "$root" 2>/dev/null || true
  rm -rf "$root" "$exec_root" "$socket" "$config" "/run/$name.pid"
  ip netns del "$netns" 2>/dev/null || true
}

cleanup() {
  local status=$?
  teardown
  exit "$status"
}

if [ -e "/run/netns/$netns" ]; then
  say "removing a leftover $netns"
  teardown
fi
trap cleanup EXIT INT TERM

rm -rf "$root" "$exec_root"
ip netns add "$netns"
ip -n "$netns" link set lo up
mkdir -p "$root"
# dockerd wants its data root on a shared mount, or its container mounts do not propagate.
mount --bind "$root" "$root"
mount --make-shared "$root"
rm -f "$config"
# As a host set up with setup-host.sh --default-runtime: plain `docker run` containers restore in place.
"$here/docker-daemon-config.sh" "$config" "$prefix/usr/sbin/cryo-runtime" $store --default-runtime >/dev/null

step "starting Docker $version${store:+ with the containerd image store} in network namespace $netns (log: $log)"
# `ip netns exec` remounts /sys and breaks dockerd's cgroups; nsenter only switches the network namespace.
PATH=$engine_path setsid nohup nsenter --net="/run/netns/$netns" "$prefix/usr/sbin/dockerd" \
  --data-root "$root" --exec-root "$exec_root" --pidfile "/run/$name.pid" -H "unix://$socket" \
  --config-file "$config" >"$log" 2>&1 </dev/null &
for _ in $(seq 1 120); do
  docker -H "unix://$socket" version >/dev/null 2>&1 && break
  sleep 0.5
done
docker -H "unix://$socket" version --format '    dockerd {{.Server.Version}} answers' || die "Docker $version did not start; see $log"

export DOCKER_HOST="unix://$socket"
export CRYO_DOCKER_EXEC_ROOT=$exec_root
export CRYO_CONTAINERD_SOCKET=$exec_root/containerd/containerd.sock
export CRYO_RUNC=$prefix/usr/sbin/runc
export CRYO_ENGINE_PREFIX=$prefix
export CRYO_TEST_ENGINE=$name
"$repo/fixtures/build-images.sh"
step "running: $*"
set +e
PATH=$engine_path nsenter --net="/run/netns/$netns" "$@"
