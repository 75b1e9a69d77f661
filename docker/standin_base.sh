#!/usr/bin/env bash
# A stand-in for the modern profile's base image (debian:bookworm-slim) on a host that reaches
# Debian's archive but no image registry: a minimal Debian 12 made with debootstrap, with the
# apt sources of Debian's own images (the release, its updates, its security archive), imported
# as a local image with podman or buildah. Needs root (debootstrap) and about 300 MB in TMPDIR.
#
#   docker/standin_base.sh ENGINE IMAGE_REF [MIRROR [SECURITY_MIRROR]]
#
# Writes nothing but a temporary folder (removed on exit) and the image.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 podman|buildah IMAGE_REF [MIRROR [SECURITY_MIRROR]]" >&2
    exit 2
fi
engine=$1
ref=$2
mirror=${3:-http://deb.debian.org/debian}
security=${4:-http://deb.debian.org/debian-security}

case "$(basename "${engine%% *}")" in
    *podman) build=(build) ;;
    *buildah) build=(bud) ;;
    *) echo "standin_base.sh: ENGINE must be podman or buildah, got '$engine'" >&2; exit 2 ;;
esac
command -v debootstrap >/dev/null 2>&1 || {
    echo "standin_base.sh: debootstrap not found (Debian/Ubuntu: apt-get install debootstrap)" >&2
    exit 1
}
[ "$(id -u)" = 0 ] || { echo "standin_base.sh: debootstrap needs root" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pekit-standin.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "stand-in base: debootstrap --variant=minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    echo "standin_base.sh: debootstrap failed (log above)" >&2
    exit 1
}
cat >"$work/rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/archives/"*.deb
tar --numeric-owner -C "$work/rootfs" -czf "$work/rootfs.tar.gz" .
rm -rf "$work/rootfs"
printf 'FROM scratch\nADD rootfs.tar.gz /\nCMD ["bash"]\n' >"$work/Containerfile"
# shellcheck disable=SC2086  # ENGINE may carry its own flags
$engine "${build[@]}" --format docker -f "$work/Containerfile" -t "$ref" "$work"
echo "stand-in base: $ref"
