#!/usr/bin/env bash
# Makes CRIU >= 4.2 available as `criu` on PATH, and checkpointctl beside it.
# Keeps a system criu that passes `criu check` at a recent enough version. Otherwise it unpacks Debian
# forky's criu and checkpointctl with all their libraries (forky's glibc included) into a private prefix
# and runs them through that prefix's own loader, so the host's libraries are never touched.
# Debian 12's criu 3.17.1 fails `criu check` on these kernels (vDSO), and trixie's 4.1.1 cannot dump
# inet sockets on kernel >= 6.16 (SO_PASSCRED returns EOPNOTSUPP; fixed in criu 4.2).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=native-scripts/lib.sh
. "$here/lib.sh"

[ "$(id -u)" -eq 0 ] || die "install-criu.sh must run as root"

criu_ok() {
  command -v criu >/dev/null || return 1
  local v
  v=$(criu_version)
  [ -n "$v" ] && version_ge "$v" "$CRIU_MIN_VERSION" && criu check >/dev/null 2>&1
}

checkpointctl_ok() {
  command -v checkpointctl >/dev/null && checkpointctl --help >/dev/null 2>&1
}

if criu_ok && checkpointctl_ok; then
  say "criu $(criu_version) at $(command -v criu) passes 'criu check'; checkpointctl at $(command -v checkpointctl)"
  exit 0
fi
if command -v criu >/dev/null; then
  say "criu at $(command -v criu) is version '$(criu_version)' or fails 'criu check'; installing forky's criu"
fi

work=$(mktemp -d /tmp/cryo-criu.XXXXXX)
trap 'rm -rf "$work"' EXIT
PRIVATE_APT_RECURSE=1 private_apt_download "$FORKY_SUITE" "$work" criu checkpointctl
unpack_debs "$work" "$CRIU_PREFIX"

write_wrapper() {
  local target=$1 binary=$2
  cat >"$target.tmp" <<WRAP
#!/bin/sh
# Installed by cryo's native-scripts/install-criu.sh: runs $(basename "$binary") from a private prefix through that prefix's own loader.
exec "$CRIU_PREFIX/usr/lib64/ld-linux-x86-64.so.2" --library-path "$CRIU_PREFIX/usr/lib/x86_64-linux-gnu" "$binary" "\$@"
WRAP
  chmod 0755 "$target.tmp"
  mv "$target.tmp" "$target"
}
# /usr/local/sbin comes first on root's PATH, so runc (started by dockerd) finds this criu too.
write_wrapper /usr/local/sbin/criu "$CRIU_PREFIX/usr/sbin/criu"
write_wrapper /usr/local/sbin/checkpointctl "$CRIU_PREFIX/usr/bin/checkpointctl"
hash -r
say "installed criu $(criu_version) and checkpointctl in $CRIU_PREFIX, wrappers in /usr/local/sbin"
criu_ok || die "the installed criu $(criu_version) fails 'criu check'"
