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
