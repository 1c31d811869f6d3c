#!/bin/bash
# Build the libuvm test guest: OUTDIR/vmlinuz + OUTDIR/initramfs.img.
#
# Usage: tests/guest/build-guest.sh OUTDIR
#
# The kernel is Debian's cloud kernel (the package that the
# linux-image-cloud-amd64 metapackage depends on), fetched with
# `apt-get download`; the initramfs holds a static busybox, the handful of
# kernel modules the guest needs and tests/guest/init as /init.
#
# The result is cached: when both outputs exist and OUTDIR/.guest-stamp
# records the same kernel package version and the same hash of the inputs
# (this script, init, /bin/busybox), the script exits at once.
# UVM_GUEST_REBUILD=1 forces a rebuild.
#
# Needs: apt-get/apt-cache/dpkg-deb (any Debian), busybox-static (/bin/busybox),
# cpio, gzip, sha256sum. No kmod, no root (root only for `apt-get update`
# when the package lists are missing).
set -euo pipefail

prog=${0##*/}
die() { echo "$prog: error: $*" >&2; exit 1; }
note() { echo "$prog: $*" >&2; }

[ $# -eq 1 ] || { echo "usage: $prog OUTDIR" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
init_src=$here/init
busybox=/bin/busybox
metapkg=linux-image-cloud-amd64

# Modules the guest loads (module names, '-' and '_' are equivalent).
# Their dependencies are added automatically; modules built into the
# kernel (modules.builtin) are skipped.
wanted_modules=(
	virtio virtio_ring
	virtio_pci virtio_pci_legacy_dev virtio_pci_modern_dev
	virtio_mmio
	virtio_net net_failover failover
	virtio_blk virtio_console virtio_rng virtio_balloon
	button evdev
	pvpanic_pci pvpanic_mmio
)

# ---- prerequisites ---------------------------------------------------------
[ -f "$init_src" ] || die "missing $init_src"
if [ ! -x "$busybox" ]; then
	die "$busybox not found: install the static busybox (apt-get install busybox-static)"
fi
if ldd "$busybox" >/dev/null 2>&1; then
	die "$busybox is dynamically linked: install busybox-static (not busybox)"
fi
command -v cpio >/dev/null || die "cpio not found: apt-get install cpio"
for tool in apt-get apt-cache dpkg-deb gzip sha256sum; do
	command -v "$tool" >/dev/null || die "'$tool' not found"
done

mkdir -p "$1"
outdir=$(cd "$1" && pwd)
stamp=$outdir/.guest-stamp

# Serialise concurrent builds into the same OUTDIR.
if command -v flock >/dev/null; then
	exec 9>"$outdir/.guest-lock"
	flock 9
fi

inputs_hash=$(cat "${BASH_SOURCE[0]}" "$init_src" "$busybox" | sha256sum | cut -d' ' -f1)

# ---- resolve the real kernel package ---------------------------------------
# Prints "PACKAGE VERSION" of the candidate linux-image-*-cloud-amd64 package.
resolve_kernel_pkg() {
	local dep
	dep=$(apt-cache show --no-all-versions "$metapkg" 2>/dev/null |
		sed -n 's/^Depends: //p' | tr ',' '\n' |
		sed -n 's/^ *\(linux-image-[^ ]*-cloud-amd64\) *(= *\([^)]*\)).*/\1 \2/p' |
		head -n1) || true
	[ -n "$dep" ] || return 1
	echo "$dep"
}

apt_updated=
apt_update() {
	[ -z "$apt_updated" ] || return 1
	apt_updated=1
	note "refreshing the package lists (apt-get update)"
	if [ "$(id -u)" -ne 0 ]; then
		die "the apt package lists are missing or stale and updating them needs root: run 'apt-get update' as root"
	fi
	apt-get update -qq || die "apt-get update failed"
}

kpkg='' kver=''
read -r kpkg kver < <(resolve_kernel_pkg) || kpkg='' kver=''

# ---- cache check -----------------------------------------------------------
if [ -z "${UVM_GUEST_REBUILD:-}" ] && [ -s "$outdir/vmlinuz" ] &&
	[ -s "$outdir/initramfs.img" ] && [ -f "$stamp" ]; then
	stamp_inputs=$(sed -n 's/^inputs-sha256=//p' "$stamp")
	stamp_kver=$(sed -n 's/^kernel-package-version=//p' "$stamp")
	if [ "$stamp_inputs" = "$inputs_hash" ]; then
		if [ -n "$kver" ] && [ "$stamp_kver" = "$kver" ]; then
			exit 0
		fi
		if [ -z "$kver" ]; then
			# No package lists to compare against (offline, fresh
			# container): what we have is as good as it gets.
			note "cannot resolve $metapkg (no apt lists); keeping the cached guest ($stamp_kver)"
			exit 0
		fi
	fi
fi

if [ -z "$kpkg" ]; then
	apt_update
	read -r kpkg kver < <(resolve_kernel_pkg) ||
		die "cannot resolve the kernel package from $metapkg's Depends"
fi

# ---- download and unpack ---------------------------------------------------
work=$(mktemp -d "$outdir/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

apt_download() {
	# As root, apt drops to the _apt user for downloads and warns when
	# _apt cannot write to the (private, 0700) target directory; there is
	# nothing to sandbox for a plain file fetch, so download as root.
	local sandbox=()
	[ "$(id -u)" -ne 0 ] || sandbox=(-o APT::Sandbox::User=root)
	(cd "$work/deb" && apt-get download -q "${sandbox[@]}" "$kpkg=$kver" >/dev/null)
}

mkdir -p "$work/deb"
note "downloading $kpkg $kver"
if ! apt_download; then
	# Stale lists (the version was superseded in the archive): refresh.
	apt_update || die "apt-get download $kpkg=$kver failed"
	read -r kpkg kver < <(resolve_kernel_pkg) ||
		die "cannot resolve the kernel package from $metapkg's Depends"
	note "downloading $kpkg $kver"
	apt_download || die "apt-get download $kpkg=$kver failed"
fi
deb=$(ls "$work"/deb/*.deb)

dpkg-deb -x "$deb" "$work/pkg"

moddirs=("$work"/pkg/lib/modules/*)
[ -d "${moddirs[0]}" ] || die "no /lib/modules in $deb"
moddir=${moddirs[0]}
kernel_release=${moddir##*/}
[ -f "$work/pkg/boot/vmlinuz-$kernel_release" ] || die "no vmlinuz-$kernel_release in $deb"

# ---- modules ---------------------------------------------------------------
# name -> path in the unpacked tree (names with '-' folded to '_')
declare -A mod_path=()
while IFS= read -r -d '' f; do
	base=${f##*/}
	base=${base%%.ko*}
	mod_path[${base//-/_}]=$f
done < <(find "$moddir" \( -name '*.ko' -o -name '*.ko.*' \) -print0 | sort -z)

is_builtin() {
	local n=$1
	[ -f "$moddir/modules.builtin" ] || return 1
	sed 's|.*/||; s|\.ko.*||; s|-|_|g' "$moddir/modules.builtin" | grep -qx -- "$n"
}

stage=$work/root
mkdir -p "$stage/lib/modules"

# Decompress (if needed) a module into the staging tree: busybox insmod
# only loads plain ELF objects.
stage_module() {
	local n=$1 src=$2 dst=$stage/lib/modules/$1.ko
	case $src in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" >"$dst" || die "cannot decompress $src (install xz-utils)" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" || die "cannot decompress $src (install zstd)" ;;
	*) die "unknown module format: $src" ;;
	esac
}

# Dependencies of a staged module: modules.dep when the package ships one,
# else the depends= field of the module's .modinfo section (which is what
# depmod would have used).
module_deps() {
	local n=$1 line rel
	if [ -s "$moddir/modules.dep" ]; then
		rel=${mod_path[$n]#"$moddir"/}
		line=$(grep -m1 "^$rel:" "$moddir/modules.dep" || true)
		for d in ${line#*:}; do
			d=${d##*/}
			d=${d%%.ko*}
			echo "${d//-/_}"
		done
	else
		tr '\0' '\n' <"$stage/lib/modules/$n.ko" |
			sed -n 's/^depends=//p' | head -n1 | tr ',' '\n' |
			sed '/^$/d; s/-/_/g'
	fi
}

declare -A visited=()
load_order=()
visit() {
	local n=${1//-/_} d
	[ -z "${visited[$n]:-}" ] || return 0
	visited[$n]=1
	if [ -z "${mod_path[$n]:-}" ]; then
		if is_builtin "$n"; then
			note "module $n is built into $kernel_release"
			return 0
		fi
		die "module $n not found in $kpkg"
	fi
	stage_module "$n" "${mod_path[$n]}"
	for d in $(module_deps "$n"); do
		visit "$d"
	done
	load_order+=("$n")
}
for m in "${wanted_modules[@]}"; do
	visit "$m"
done
printf '%s\n' "${load_order[@]}" >"$stage/lib/modules/load-order"

# ---- busybox, init ---------------------------------------------------------
mkdir -p "$stage"/{bin,dev,proc,sys,tmp,etc}
cp "$busybox" "$stage/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$stage/bin/$applet"
done
ln -s bin "$stage/sbin"
cp "$init_src" "$stage/init"
chmod 0755 "$stage/init" "$stage/bin/busybox"
echo "$kpkg $kver $kernel_release" >"$stage/etc/uvm-guest-kernel"

# ---- initramfs -------------------------------------------------------------
# A hand-made newc entry for /dev/console (so the kernel can open the
# initial console without root being needed to mknod), followed by the
# staging tree as a second, concatenated archive.
newc_entry() { # name mode nlink rdevmajor rdevminor
	local name=$1 mode=$2 nlink=$3 rmaj=$4 rmin=$5 namesize hdr pad
	namesize=$((${#name} + 1))
	hdr=$(printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		0 "$mode" 0 0 "$nlink" 0 0 0 0 "$rmaj" "$rmin" "$namesize" 0)
	printf '%s%s\0' "$hdr" "$name"
	pad=$(((4 - (110 + namesize) % 4) % 4))
	head -c "$pad" /dev/zero
}
{
	newc_entry dev $((0040755)) 2 0 0
	newc_entry dev/console $((0020600)) 1 5 1
	newc_entry TRAILER!!! 0 1 0 0
	(cd "$stage" && find . -mindepth 1 -exec touch -h -d @0 {} + &&
		find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --reproducible --quiet)
} | gzip -9 -n >"$work/initramfs.img"

cp "$work/pkg/boot/vmlinuz-$kernel_release" "$work/vmlinuz"
mv -f "$work/vmlinuz" "$outdir/vmlinuz"
mv -f "$work/initramfs.img" "$outdir/initramfs.img"
cat >"$stamp" <<EOF
kernel-package=$kpkg
kernel-package-version=$kver
kernel-release=$kernel_release
inputs-sha256=$inputs_hash
modules=${load_order[*]}
EOF
note "built $outdir/vmlinuz and $outdir/initramfs.img ($(stat -c %s "$outdir/initramfs.img") bytes; $kpkg $kver)"
