#!/usr/bin/env bash
# Test fixture: a local stand-in for `node:24-bookworm-slim`, for machines that can build with Podman
# but cannot pull images. Debian bookworm (minbase, from the mirror apt already uses) plus the Node 24
# binary of the node@24 devDependency, the host's npm, the official image's `node` user (uid 1000)
# and the host's CA bundle (npm inside the build goes through the same TLS path as the host).
# The Dockerfile is not changed: it says `FROM node:24-bookworm-slim`, which a user's Docker pulls.
#
# Cached by content: the image carries a label with a hash of its inputs (this script, the node
# binary, npm's version, the CA bundle). When the label matches, nothing is done; the root
# filesystem tarball is also kept under the cache folder, so a wiped Podman store re-imports in
# seconds instead of running debootstrap again (~25 s, ~200 MB).
#
# Usage: scripts/container-base.sh   (as root; prints the image name)
# Env: OPENCLAW_WEBHOOKS_CACHE (default ~/.cache/openclaw-webhooks), CONTAINERS_CONF (see podman-env.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
# shellcheck source=./podman-env.sh
. "$here/podman-env.sh"

IMAGE=docker.io/library/node:24-bookworm-slim
node_bin="$repo/node_modules/node/bin/node"
[ -x "$node_bin" ] || { echo "container-base: $node_bin missing (npm install first)" >&2; exit 1; }
npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
ca=/etc/ssl/certs/ca-certificates.crt

key=$( {
  sha256sum "$0" | cut -d' ' -f1
  sha256sum "$node_bin" | cut -d' ' -f1
  node -e 'console.log(require(process.argv[1]).version)' "$npm_dir/package.json"
  sha256sum "$ca" | cut -d' ' -f1
} | sha256sum | cut -c1-16)

have=$(podman image inspect "$IMAGE" --format '{{ index .Labels "ocwh.base" }}' 2>/dev/null || true)
if [ "$have" = "$key" ]; then
  echo "$IMAGE"
  exit 0
fi

mkdir -p "$OCWH_CACHE/base"
tarball="$OCWH_CACHE/base/rootfs-$key.tar"
if [ ! -f "$tarball" ]; then
  echo "container-base: building the stand-in root filesystem ($key)" >&2
  root=$(mktemp -d /var/tmp/ocwh-base.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list)
  debootstrap --variant=minbase bookworm "$root" "$mirror" >"$OCWH_CACHE/base/debootstrap.log" 2>&1 \
    || { tail -20 "$OCWH_CACHE/base/debootstrap.log" >&2; exit 1; }
  cp "$node_bin" "$root/usr/local/bin/node"
  mkdir -p "$root/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  chroot "$root" sh -c 'groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/sh node'
  mkdir -p "$root/etc/ssl/certs" && cp "$ca" "$root/etc/ssl/certs/"
  # Smaller, like the official slim image: no apt lists, docs or man pages.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
  tar -C "$root" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
  find "$OCWH_CACHE/base" -name 'rootfs-*.tar' ! -name "rootfs-$key.tar" -delete
fi
echo "container-base: importing $tarball as $IMAGE" >&2
podman import \
  --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' \
  --change "LABEL ocwh.base=$key" \
  --change 'CMD ["node"]' \
  "$tarball" "$IMAGE" >/dev/null
echo "$IMAGE"
