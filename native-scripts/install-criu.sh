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

apt_install ca-certificates debian-archive-keyring

work=$(mktemp -d /tmp/cryo-criu.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $FORKY_SUITE main" >"$work/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list"
  -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/lists"
  -o "Dir::Cache=$work/cache"
  -o "Dir::State::status=/dev/null"
  -o "APT::Architecture=amd64"
  -o "APT::Architectures::=amd64"
  -o "APT::Sandbox::User=root"
)
[ "$(dpkg --print-architecture)" = amd64 ] || die "the private CRIU install supports amd64 only; install CRIU >= $CRIU_MIN_VERSION yourself"

say "reading the $FORKY_SUITE package list (temporary sources list, the host's apt state is untouched)"
apt-get "${apt_opts[@]}" update -qq
mapfile -t pkgs < <(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances criu checkpointctl | grep -E '^[a-z0-9]' | sort -u)
say "downloading ${#pkgs[@]} packages: ${pkgs[*]}"
(cd "$work/debs" && apt-get "${apt_opts[@]}" download -qq "${pkgs[@]}")

staging="$CRIU_PREFIX.new"
rm -rf "$staging"
mkdir -p "$staging"
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$staging"
done
loader="$staging/usr/lib64/ld-linux-x86-64.so.2"
[ -x "$loader" ] || die "forky's libc6 did not provide $loader"
rm -rf "$CRIU_PREFIX"
mv "$staging" "$CRIU_PREFIX"

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
