#!/usr/bin/env bash
# Installs a Debian suite's Docker engine (dockerd, containerd, runc, docker-init) into a private prefix,
# /opt/cryo/docker-<version>, beside the host's own Docker, for cryo's engine matrix (native-scripts/with-engine.sh).
# Usage: install-docker-engine.sh 26|28
# Nothing of the host's is touched: the binaries run with the prefix's glibc through their own patched
# interpreter and rpath. A loader wrapper script would break runc, which re-executes /proc/self/exe
# ("can't copy bootstrap data to pipe"), and dockerd, which re-executes itself to unpack layers. DT_RPATH
# (--force-rpath), not DT_RUNPATH: it also holds for the libraries' own dependencies (libsystemd needs libm).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=native-scripts/lib.sh
. "$here/lib.sh"

[ "$(id -u)" -eq 0 ] || die "install-docker-engine.sh must run as root"
version=${1:-}
suite=$(engine_suite "$version") || die "usage: $0 26|28 (Debian trixie's Docker 26 or forky's Docker 28)"
prefix=$(engine_prefix "$version")

if [ -x "$prefix/usr/sbin/dockerd" ] && "$prefix/usr/sbin/dockerd" --version >/dev/null 2>&1; then
  install -m 0755 "$here/cryo-runtime" "$prefix/usr/sbin/cryo-runtime"
  say "$("$prefix/usr/sbin/dockerd" --version) is installed in $prefix"
  exit 0
fi

apt_install patchelf iptables
work=$(mktemp -d /tmp/cryo-docker.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The engine and the libraries its binaries link, from the same suite; iptables stays the host's.
# docker-init is tini's static build: package tini in trixie, tini-static from forky on.
tini=tini-static
[ "$suite" = trixie ] && tini=tini
private_apt_download "$suite" "$work" docker.io containerd runc "$tini" libc6 libseccomp2 libsystemd0 \
  libcap2 libgcrypt20 libgpg-error0 liblz4-1 liblzma5 libzstd1
unpack_debs "$work" "$prefix"

loader="$prefix/usr/lib64/ld-linux-x86-64.so.2"
libs="$prefix/usr/lib/x86_64-linux-gnu"
for bin in usr/sbin/dockerd usr/sbin/docker-proxy usr/sbin/runc usr/bin/containerd usr/bin/containerd-shim-runc-v2 usr/bin/ctr; do
  [ -f "$prefix/$bin" ] || continue
  patchelf --set-interpreter "$loader" --force-rpath --set-rpath "$libs" "$prefix/$bin"
done
"$prefix/usr/sbin/runc" --version >/dev/null || die "the patched runc in $prefix does not run"
"$prefix/usr/sbin/dockerd" --version >/dev/null || die "the patched dockerd in $prefix does not run"
install -m 0755 "$here/cryo-runtime" "$prefix/usr/sbin/cryo-runtime"
say "installed $("$prefix/usr/sbin/dockerd" --version) with runc $("$prefix/usr/sbin/runc" --version | awk 'NR==1 {print $3}') in $prefix"
