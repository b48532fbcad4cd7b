#!/usr/bin/env bash
# Installs Debian forky's Podman 5.8 (podman, conmon, netavark, aardvark-dns and the libraries they link) into a
# private prefix, /opt/cryo/podman-5.8, beside the host's Podman 4.3, for the cross-engine tests of the matrix.
# Usage: install-podman-engine.sh 5.8       Then: /opt/cryo/podman-5.8/bin/podman ...
# Nothing of the host's is touched: the binaries run with the prefix's glibc through their own patched interpreter
# and rpath (as install-docker-engine.sh does), and bin/podman runs Podman with the prefix's containers.conf and
# storage.conf, its own storage (/var/lib/cryo-podman-5.8, /run/cryo-podman-5.8) and the host's runc and CRIU.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=native-scripts/lib.sh
. "$here/lib.sh"

[ "$(id -u)" -eq 0 ] || die "install-podman-engine.sh must run as root"
[ "${1:-}" = 5.8 ] || die "usage: $0 5.8 (Debian forky's Podman 5.8)"
prefix=/opt/cryo/podman-5.8
state=/var/lib/cryo-podman-5.8
run=/run/cryo-podman-5.8

if [ -x "$prefix/bin/podman" ] && "$prefix/bin/podman" --version >/dev/null 2>&1; then
  say "$("$prefix/bin/podman" --version) is installed in $prefix"
  exit 0
fi

apt_install patchelf iptables
work=$(mktemp -d /tmp/cryo-podman.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Podman's own packages and, from the same suite, every library their binaries link (ldd lists none missing).
private_apt_download forky "$work" podman conmon netavark aardvark-dns golang-github-containers-common \
  libc6 libgpgme45 libassuan9 libgpg-error0 libseccomp2 libsubid6 libsqlite3-0 libglib2.0-0t64 libsystemd0 \
  libcap2 libgcrypt20 liblz4-1 liblzma5 libzstd1 libpcre2-8-0 libffi8 libmount1 libblkid1 libselinux1 libaudit1 \
  libcap-ng0 libbsd0 libmd0 libsemanage2 libsepol2 libbz2-1.0 libgcc-s1 zlib1g libacl1 libattr1 libpam0g \
  libcrypt1 libeconf0 libtinfo6
unpack_debs "$work" "$prefix"

loader="$prefix/usr/lib64/ld-linux-x86-64.so.2"
libs="$prefix/usr/lib/x86_64-linux-gnu"
for bin in usr/bin/podman usr/bin/conmon usr/lib/podman/netavark usr/lib/podman/aardvark-dns \
  usr/libexec/podman/rootlessport; do
  [ -f "$prefix/$bin" ] || continue
  patchelf --set-interpreter "$loader" --force-rpath --set-rpath "$libs" "$prefix/$bin"
done

nofile=$(ulimit -Hn)
[ "$nofile" != unlimited ] && [ "$nofile" -lt 1048576 ] || nofile=1048576
mkdir -p "$prefix/etc/networks" "$prefix/bin"
cat >"$prefix/etc/containers.conf" <<CONF
# Podman 5.8 in cryo's private prefix (native-scripts/install-podman-engine.sh).
[containers]
# Podman's root defaults (nofile 1048576, nproc 4194304) may exceed this host's hard limits.
default_ulimits = ["nofile=$nofile:$nofile", "nproc=4096:4096"]
seccomp_profile = "$prefix/usr/share/containers/seccomp.json"

[network]
network_backend = "netavark"
network_config_dir = "$prefix/etc/networks"
firewall_driver = "iptables"
# Not Podman 4.3's 10.88.0.0/16, whose CNI bridge may be up beside it.
default_subnet = "10.89.0.0/16"

[engine]
helper_binaries_dir = ["$prefix/usr/lib/podman", "$prefix/usr/libexec/podman"]
conmon_path = ["$prefix/usr/bin/conmon"]
runtime = "runc"
tmp_dir = "$run/tmp"
static_dir = "$state/libpod"
volume_path = "$state/volumes"

[engine.runtimes]
runc = ["$(command -v runc)"]
CONF
cat >"$prefix/etc/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$state/storage"
runroot = "$run/storage"
CONF
cat >"$prefix/bin/podman" <<SH
#!/bin/sh
# Podman 5.8 of cryo's private prefix, with its own configuration and storage.
export CONTAINERS_CONF=$prefix/etc/containers.conf CONTAINERS_STORAGE_CONF=$prefix/etc/storage.conf
export PODMAN_IGNORE_CGROUPSV1_WARNING=1
exec $prefix/usr/bin/podman "\$@"
SH
chmod 0755 "$prefix/bin/podman"
"$prefix/bin/podman" info --format '{{.Host.NetworkBackend}}' >/dev/null || die "the Podman in $prefix does not run"
say "installed $("$prefix/bin/podman" --version) in $prefix"
