#!/bin/sh
# Installs what libuvm needs to build, test and run its examples on Debian 12.
# Idempotent; needs root (or sudo) for apt-get.
set -eu

packages="
  build-essential meson ninja-build pkg-config
  libglib2.0-dev libjson-glib-dev libseccomp-dev libmnl-dev libnftables-dev nftables
  qemu-system-x86 passt busybox-static cpio
  abigail-tools tmux
  python3-jsonschema python3-yaml python3-pytest
  python3-cffi python3-dev python3-setuptools python3-pip python3-venv
"
missing=
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  as_root=
  [ "$(id -u)" -eq 0 ] || as_root=sudo
  $as_root apt-get update -q
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -q --no-install-recommends $missing
fi
