# Shared helpers for the native scripts; sourced, never run.
# shellcheck shell=bash

CRIU_MIN_VERSION=4.2
CRIU_PREFIX=${CRIU_PREFIX:-/opt/cryo/criu}
FORKY_SUITE=forky

step() { printf '\n==> %s\n' "$*"; }
say() { printf '    %s\n' "$*"; }
die() {
  printf '\nERROR: %s\n' "$*" >&2
  exit 1
}

# version_ge A B: true when version A >= version B (dotted numbers).
version_ge() {
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

criu_version() {
  criu --version 2>/dev/null | awk '/^Version:/ {print $2}'
}

check_kernel_checkpoint_restore() {
  local cfg=""
  if [ -r /proc/config.gz ]; then
    cfg=$(zcat /proc/config.gz)
  elif [ -r "/boot/config-$(uname -r)" ]; then
    cfg=$(cat "/boot/config-$(uname -r)")
  fi
  if [ -n "$cfg" ]; then
    grep -q '^CONFIG_CHECKPOINT_RESTORE=y' <<<"$cfg" ||
      die "kernel $(uname -r) is built without CONFIG_CHECKPOINT_RESTORE: CRIU cannot work on it"
  else
    # ns_last_pid only exists when the kernel has CONFIG_CHECKPOINT_RESTORE.
    [ -e /proc/sys/kernel/ns_last_pid ] ||
      die "kernel $(uname -r) lacks CONFIG_CHECKPOINT_RESTORE (no /proc/sys/kernel/ns_last_pid): CRIU cannot work on it"
  fi
  say "kernel $(uname -r) has CONFIG_CHECKPOINT_RESTORE"
}

apt_updated=0
apt_install() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    say "already installed: $*"
    return
  fi
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

docker_answers() {
  timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1
}

# private_apt_download SUITE DEST PKG...: downloads Debian SUITE's packages into DEST with a temporary sources
# list and apt state, so the host's apt configuration and package database are never touched.
private_apt_download() {
  local suite=$1 dest=$2
  shift 2
  [ "$(dpkg --print-architecture)" = amd64 ] || die "private installs from Debian $suite support amd64 only"
  apt_install ca-certificates debian-archive-keyring
  local state
  state=$(mktemp -d /tmp/cryo-apt.XXXXXX)
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$dest"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" >"$state/sources.list"
  local opts=(
    -o "Dir::Etc::SourceList=$state/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$state/lists"
    -o "Dir::Cache=$state/cache"
    -o "Dir::State::status=/dev/null"
    -o "APT::Architecture=amd64"
    -o "APT::Architectures::=amd64"
    -o "APT::Sandbox::User=root"
  )
  say "reading the $suite package list (temporary sources list, the host's apt state is untouched)"
  apt-get "${opts[@]}" update -qq
  local pkgs
  if [ "${PRIVATE_APT_RECURSE:-0}" = 1 ]; then
    mapfile -t pkgs < <(apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
      --no-breaks --no-replaces --no-enhances "$@" | grep -E '^[a-z0-9]' | sort -u)
  else
    pkgs=("$@")
  fi
  say "downloading ${#pkgs[@]} packages from $suite: ${pkgs[*]}"
  (cd "$dest" && apt-get "${opts[@]}" download -qq "${pkgs[@]}")
  rm -rf "$state"
}

# unpack_debs DIR PREFIX: unpacks every .deb in DIR into PREFIX, through a staging directory renamed into place.
unpack_debs() {
  local dir=$1 prefix=$2 deb
  rm -rf "$prefix.new"
  mkdir -p "$prefix.new"
  for deb in "$dir"/*.deb; do dpkg-deb -x "$deb" "$prefix.new"; done
  [ -x "$prefix.new/usr/lib64/ld-linux-x86-64.so.2" ] || die "the packages in $dir did not provide a loader"
  rm -rf "$prefix"
  mv "$prefix.new" "$prefix"
}

# engine_suite VERSION: the Debian suite whose docker.io is that major version (the engine matrix).
engine_suite() {
  case "${1:-}" in
    26) echo trixie ;;
    28) echo forky ;;
    *) return 1 ;;
  esac
}

engine_prefix() {
  echo "/opt/cryo/docker-$1"
}

# Where setup-host.sh installs cryo's OCI runtime for the host's dockerd.
CRYO_RUNTIME_PATH=${CRYO_RUNTIME_PATH:-/usr/local/lib/cryo/cryo-runtime}
