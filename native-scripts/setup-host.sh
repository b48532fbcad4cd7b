#!/usr/bin/env bash
# Prepares a Debian host for cryo: Docker (experimental, with cryo's runtime), CRIU >= 4.2, checkpointctl,
# Podman (Debian's), the npm build and the test images; with CRYO_ENGINES="26 28", also those Docker versions in private prefixes. Idempotent; run as root. With --start it also starts cryo and waits until it answers.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=native-scripts/lib.sh
. "$here/lib.sh"

start_service=0
runtime_flags=()
usage="usage: $0 [--start] [--default-runtime]"
for arg in "$@"; do
  case "$arg" in
    --start) start_service=1 ;;
    # Makes cryo's runtime dockerd's default, so that containers started later can be restored in place on
    # Docker >= 28 too (moby/moby#50750); without it, those restore only into new containers.
    --default-runtime) runtime_flags+=(--default-runtime) ;;
    -h | --help)
      echo "$usage"
      exit 0
      ;;
    *) die "unknown argument: $arg ($usage)" ;;
  esac
done

step "checking that we run as root"
[ "$(id -u)" -eq 0 ] || die "setup-host.sh must run as root (try: sudo $0)"

step "checking the kernel for CONFIG_CHECKPOINT_RESTORE"
check_kernel_checkpoint_restore

step "checking Node.js (>= 20.8 is required)"
command -v node >/dev/null || die "node is not installed; install Node.js >= 20.8 first"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=8)?0:1)' ||
  die "node $(node --version) is too old; cryo needs Node.js >= 20.8"

step "installing Debian packages: docker.io zstd iproute2 busybox-static criu redis-tools docker-registry skopeo apache2-utils openssl"
# Debian 12's own criu (3.17.1) stays at /usr/sbin/criu, behind cryo's newer one in /usr/local/sbin: it is the
# too-old CRIU that the pre-flight's CRIU_TOO_OLD is tested against (its dumps fail here, on the vDSO).
# redis-tools carries Redis's one binary (redis-server is redis-check-rdb under another name) without the service:
# the Redis fixture image is made of it.
# docker-registry (distribution 2.8), skopeo, htpasswd (apache2-utils) and openssl: the registry tests' real
# registry, their yardstick, and its logins and certificates; no registry service is started.
apt_install docker.io zstd iproute2 busybox-static ca-certificates criu redis-tools docker-registry skopeo apache2-utils openssl

step "making CRIU >= ${CRIU_MIN_VERSION} available as criu"
"$here/install-criu.sh"

step "running criu check"
criu check || die "'criu check' fails on this host: CRIU cannot checkpoint here (see its output above)"
say "criu $(criu_version) passes 'criu check'"

step "installing Podman (Debian's) for checkpoints that cross between Docker and Podman"
# Podman restores cryo's archives (`podman container restore --import`); the cross-engine tests use it.
# Without its recommends: buildah, fuse-overlayfs and slirp4netns serve rootless Podman, which these tests do not use.
if ! dpkg-query -W -f='${Status}' podman 2>/dev/null | grep -q 'install ok installed'; then
  [ "$apt_updated" -eq 1 ] || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman >/dev/null
fi
podman_conf=/etc/containers/containers.conf.d/50-cryo-ulimits.conf
nofile=$(ulimit -Hn)
nproc=$(ulimit -Hu)
if { [ "$nofile" != unlimited ] && [ "$nofile" -lt 1048576 ]; } || { [ "$nproc" != unlimited ] && [ "$nproc" -lt 4194304 ]; }; then
  # Podman gives root's containers nofile 1048576 and nproc 4194304, and runc cannot raise them past this host's
  # hard limits ("error setting rlimit type 7: operation not permitted"). 4096 processes are plenty for a container.
  [ "$nofile" != unlimited ] && [ "$nofile" -lt 1048576 ] || nofile=1048576
  mkdir -p "$(dirname "$podman_conf")"
  cat >"$podman_conf" <<CONF
# Written by cryo's native-scripts/setup-host.sh: this host's hard limits are below Podman's defaults.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
CONF
  say "Podman's default ulimits fit this host's hard limits ($podman_conf)"
fi
say "podman $(podman version --format '{{.Client.Version}}')"

step "writing the CRIU configuration that checkpoints name for another engine's runc"
# Every checkpoint's spec.dump names it (runc's org.criu.config annotation): src/domain/cross-engine.ts says why.
mkdir -p /etc/criu
cat >/etc/criu/cryo-cross-engine.conf <<CONF
# Written by cryo's native-scripts/setup-host.sh, for Podman's restores of checkpoints of Docker containers.
mntns-compat-mode
skip-file-rwx-check
CONF
say "/etc/criu/cryo-cross-engine.conf"

step "letting CRIU size its page pipes for post-copy migrations (fs.pipe-max-size)"
# CRIU serves lazy pages through pipes of 819 pages (3.35 MB); without CAP_SYS_RESOURCE, which the root of some
# containers and VMs lacks, a pipe cannot grow past fs.pipe-max-size (1 MiB by default) and the lazy dump fails.
pipe_max=$(cat /proc/sys/fs/pipe-max-size)
if [ "$pipe_max" -lt 4194304 ]; then
  echo 4194304 >/proc/sys/fs/pipe-max-size
  mkdir -p /etc/sysctl.d
  echo "fs.pipe-max-size = 4194304" >/etc/sysctl.d/90-cryo-post-copy.conf
  say "fs.pipe-max-size raised from $pipe_max to 4194304 (kept in /etc/sysctl.d/90-cryo-post-copy.conf)"
else
  say "fs.pipe-max-size is $pipe_max"
fi

step "installing cryo's OCI runtime as $CRYO_RUNTIME_PATH"
install -D -m 0755 "$here/cryo-runtime" "$CRYO_RUNTIME_PATH"

step "registering it and Docker's experimental features in /etc/docker/daemon.json"
config_changed=$("$here/docker-daemon-config.sh" /etc/docker/daemon.json "$CRYO_RUNTIME_PATH" "${runtime_flags[@]}" | tee /dev/stderr | grep -c '^changed$' || true)

step "starting dockerd when it is not running"
"$here/start-dockerd.sh"
if [ "$config_changed" -gt 0 ] && docker_answers; then
  # dockerd reloads its runtimes and default runtime on SIGHUP, without stopping containers.
  pid=$(cat /var/run/docker.pid 2>/dev/null || pgrep -xo dockerd || true)
  [ -n "$pid" ] && kill -HUP "$pid" && say "sent SIGHUP to dockerd (pid $pid) to load the cryo runtime"
  for _ in $(seq 1 20); do docker info --format '{{json .Runtimes}}' | grep -q '"cryo"' && break; sleep 0.5; done
fi
docker info --format '{{json .Runtimes}}' | grep -q '"cryo"' || die "dockerd does not list the cryo runtime; check /etc/docker/daemon.json"
say "dockerd lists the cryo runtime"

if [ -n "${CRYO_ENGINES:-}" ]; then
  for version in $CRYO_ENGINES; do
    step "installing Docker $version into $(engine_prefix "$version") (the engine matrix)"
    "$here/install-docker-engine.sh" "$version"
  done
fi

step "installing npm dependencies and building cryo"
cd "$repo"
npm ci --no-audit --no-fund
npm run build
# The `cryo` command (service and client) on root's PATH, for this checkout.
# --max-semi-space-size: as in start-cryo.sh.
printf '#!/bin/sh\nexec node --max-semi-space-size=2 %s/dist/src/main.js "$@"\n' "$repo" > /usr/local/bin/cryo
chmod 0755 /usr/local/bin/cryo
say "cryo command: /usr/local/bin/cryo -> $repo/dist/src/main.js"

step "building the fixture images (docker import, no registry needed)"
"$repo/fixtures/build-images.sh"

if [ "$start_service" -eq 1 ]; then
  step "starting cryo"
  "$here/start-cryo.sh"
fi

step "done"
