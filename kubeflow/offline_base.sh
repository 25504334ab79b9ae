#!/usr/bin/env bash
# Builds the pipeline image's base without pulling from any registry: a Debian bookworm root file
# system made by debootstrap (from the Debian mirror apt already uses) plus this machine's CPython
# 3.10, imported into Docker as BASE_TAG. `make image-offline` runs it, then builds kubeflow/Dockerfile
# on top. Needs root (debootstrap), debootstrap and a running dockerd.
#
#   kubeflow/offline_base.sh <python3.10 executable> <base image tag>
set -euo pipefail
python310=${1:?python3.10 executable}
base_tag=${2:?base image tag}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

for tool in debootstrap docker; do
  command -v "$tool" >/dev/null || { echo "offline_base.sh: $tool is missing (apt-get install debootstrap docker.io)" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "offline_base.sh: dockerd is not running (start it: dockerd &)" >&2; exit 1; }
if docker image inspect "$base_tag" >/dev/null 2>&1; then
  echo "$base_tag already exists"; exit 0
fi

# The interpreter keeps its absolute prefix (its libpython is found through it), so it goes to the
# same path inside the image.
prefix=$("$python310" -c 'import sys; print(sys.base_prefix)')
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase \
  --include=ca-certificates,libssl3,libsqlite3-0,libffi8,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libgdbm6,libuuid1,zlib1g,libgomp1 \
  bookworm "$rootfs" "$mirror" >/dev/null
mkdir -p "$rootfs$prefix"
cp -a "$prefix/." "$rootfs$prefix/"
# This machine's trust store: where PyPI is reached through a proxy with its own CA, the image build
# needs to trust it too.
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
for name in python python3 python3.10; do ln -sf "$prefix/bin/python3.10" "$rootfs/usr/local/bin/$name"; done
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$base_tag"
echo "built $base_tag from debootstrap bookworm + $prefix"
