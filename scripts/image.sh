#!/usr/bin/env bash
# Builds the image users pull, here, with no registry: the same Dockerfile a release uses, on a
# base made from Debian's own packages instead of gcr.io/distroless/cc-debian12:nonroot.
#
#   bash scripts/image.sh
#
# 1. The base, localhost/pushgateway-janitor-base:debian12: the packages distroless cc-debian12
#    is made of (base-files, netbase, tzdata, media-types, CA certificates, libc6, libssl3,
#    libgcc-s1, libgomp1, libstdc++6, gcc-12-base), fetched with `apt-get download` and unpacked
#    with `dpkg-deb -x` (no maintainer script runs), plus what distroless adds by hand: the CA
#    bundle (of ca-certificates only that and its copyright), /etc/passwd and /etc/group with root, nobody and nonroot (65532), nsswitch.conf,
#    /home/nonroot, a dpkg status entry per package for image scanners. Imported with
#    `podman import`; rebuilt only when the recipe below or a package version changes.
# 2. The binary: `cargo build --release --locked`, stripped into
#    target/image/bin/<arch>/pushgateway-janitor (<arch> as Docker names it: amd64, arm64).
# 3. `podman build --build-arg BASE=...` of the Dockerfile, tagged
#    localhost/pushgateway-janitor:<version> and :dev, and with the name the chart pulls by
#    default, ghcr.io/pgw-janitor/pushgateway-janitor:<version>, saved under that name as an OCI
#    archive, target/image/pushgateway-janitor-<version>.oci.tar (for `ctr images import`).
# 4. Prints the binary's, the base's and the image's size and the time `--version` takes in a
#    container started as the chart starts it.
#
# Needs podman, buildah and runc (scripts/test-deps.sh installs them) and root. Containers run
# with runc: crun fails on these machines' hybrid cgroups. The machine has no CAP_SYS_RESOURCE, so
# a container's rlimits are set at or below this shell's (IMAGE_ULIMITS below).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=target/image
NAME=pushgateway-janitor
BASE_IMAGE=localhost/$NAME-base:debian12
PUBLISHED=ghcr.io/pgw-janitor/$NAME
BASE_PACKAGES=(base-files netbase tzdata media-types ca-certificates libc6 libssl3 libgcc-s1
  libgomp1 libstdc++6 gcc-12-base)

die() { echo "image.sh: $*" >&2; exit 1; }
image_id() { podman image inspect --format '{{ .Id }}' "$1" 2>/dev/null || true; }
# Removes image $1 (an ID) unless it is still $2's: a rebuild moves the tags, the old one goes.
drop_old() { [[ -n $1 && $1 != "$(image_id "$2")" ]] && podman rmi -f "$1" >/dev/null 2>&1 || true; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

for tool in podman runc dpkg-deb apt-get strip; do
  command -v "$tool" >/dev/null ||
    die "$tool is missing: run 'bash scripts/test-deps.sh' (as root: Debian's podman, buildah, runc)"
done
((EUID == 0)) || die "podman builds and runs the image as root here; run as root"
version=$(awk -F'"' '/^\[package\]/ { p = 1 } p && /^version *=/ { print $2; exit }' Cargo.toml)
[[ -n $version ]] || die "no version in Cargo.toml's [package]"
arch=$(dpkg --print-architecture)

# ---------------------------------------------------------------- the base
# Writes the root filesystem of the base into $1 from the .deb files in $2.
base_rootfs() {
  local root=$1 debs=$2 deb pkg certs
  mkdir -p "$root/var/lib/dpkg/status.d"
  for deb in "$debs"/*.deb; do
    pkg=$(dpkg-deb -f "$deb" Package)
    [[ $pkg == ca-certificates ]] && continue
    dpkg-deb -x "$deb" "$root"
    # What distroless writes too: scanners (trivy, syft) read the packages from here.
    dpkg-deb -f "$deb" >"$root/var/lib/dpkg/status.d/$pkg"
  done
  # Of ca-certificates, as distroless takes it, only the bundle update-ca-certificates would
  # write with the default configuration (every certificate the package ships) and the
  # copyright; no maintainer script runs here to write it.
  certs=$(mktemp -d)
  dpkg-deb -x "$debs"/ca-certificates_*.deb "$certs"
  mkdir -p "$root/etc/ssl/certs" "$root/usr/share/doc/ca-certificates"
  find "$certs/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | xargs cat \
    >"$root/etc/ssl/certs/ca-certificates.crt"
  cp "$certs/usr/share/doc/ca-certificates/copyright" "$root/usr/share/doc/ca-certificates/"
  rm -rf "$certs"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'tty:x:5:' 'staff:x:50:' 'nonroot:x:65532:' \
    >"$root/etc/group"
  printf '%s\n' 'passwd: files' 'group: files' 'shadow: files' 'hosts: files dns' \
    'networks: files' 'protocols: files' 'services: files' >"$root/etc/nsswitch.conf"
  install -d -m 0700 "$root/root"
  install -d -m 0700 -o 65532 -g 65532 "$root/home/nonroot"
  install -d -m 1777 "$root/tmp"
}

# The stamp of the base: this recipe and the exact package files apt would fetch now.
base_stamp() {
  {
    declare -f base_rootfs
    echo "${BASE_PACKAGES[*]} $arch"
    apt-get download --print-uris "${BASE_PACKAGES[@]}" 2>/dev/null | awk '{ print $2, $4 }'
  } | sha256sum | cut -d' ' -f1
}

build_base() {
  local stamp have="" work=$OUT/base t0=$SECONDS old
  apt-get download --print-uris "${BASE_PACKAGES[@]}" >/dev/null 2>&1 ||
    die "apt cannot find ${BASE_PACKAGES[*]}: run 'apt-get update' first"
  stamp=$(base_stamp)
  have=$(podman image inspect --format '{{ index .Labels "dev.pgw-janitor.base-stamp" }}' \
    "$BASE_IMAGE" 2>/dev/null || true)
  [[ $have == "$stamp" ]] && return 0
  old=$(image_id "$BASE_IMAGE")
  rm -rf "$work"
  mkdir -p "$work/debs" "$work/rootfs"
  # As root apt would drop to _apt, who cannot write here; the files are checked against the
  # signed package lists either way.
  (cd "$work/debs" && apt-get download -q -o APT::Sandbox::User=root "${BASE_PACKAGES[@]}") \
    >"$OUT/base-download.log" 2>&1 || { cat "$OUT/base-download.log" >&2; die "apt-get download failed"; }
  base_rootfs "$work/rootfs" "$work/debs"
  tar --sort=name --numeric-owner --mtime=@0 -C "$work/rootfs" -c . |
    podman import -q \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
      --change 'USER 65532' --change 'WORKDIR /home/nonroot' \
      --change "LABEL dev.pgw-janitor.base-stamp=$stamp" \
      - "$BASE_IMAGE" >/dev/null
  rm -rf "$work/rootfs"
  drop_old "$old" "$BASE_IMAGE"
  echo "image.sh: built the base $BASE_IMAGE from ${#BASE_PACKAGES[@]} Debian packages ($((SECONDS - t0))s)"
}

# ---------------------------------------------------------------- the binary
build_binary() {
  local t0=$SECONDS bin=$OUT/bin/$arch/$NAME
  nice -n 5 cargo build --release --locked --bin "$NAME" >"$OUT/cargo-release.log" 2>&1 ||
    { tail -n 30 "$OUT/cargo-release.log" >&2; die "cargo build --release failed (log: $OUT/cargo-release.log)"; }
  mkdir -p "$(dirname "$bin")"
  strip -o "$bin.tmp" "target/release/$NAME"
  mv -f "$bin.tmp" "$bin"
  echo "image.sh: release binary built and stripped ($((SECONDS - t0))s)"
}

# ---------------------------------------------------------------- the image
# The rlimits a container gets: this shell's, capped (podman's own process tree here holds
# RLIMIT_NPROC at 32768, and nothing may raise a limit without CAP_SYS_RESOURCE).
capped() { if [[ $1 == unlimited ]] || (($1 > $2)); then echo "$2"; else echo "$1"; fi; }
IMAGE_ULIMITS=(--ulimit "nofile=$(capped "$(ulimit -n)" 65536)"
  --ulimit "nproc=$(capped "$(ulimit -u)" 4096)")

build_image() {
  local t0=$SECONDS archive=$OUT/$NAME-$version.oci.tar old
  old=$(image_id "localhost/$NAME:$version")
  podman build -q --runtime runc --platform "linux/$arch" --build-arg "BASE=$BASE_IMAGE" \
    --label "org.opencontainers.image.version=$version" \
    -t "localhost/$NAME:$version" -t "localhost/$NAME:dev" -t "$PUBLISHED:$version" \
    -f Dockerfile . >/dev/null
  drop_old "$old" "localhost/$NAME:$version"
  rm -f "$archive"
  podman save -q --format oci-archive -o "$archive" "$PUBLISHED:$version"
  echo "image.sh: built localhost/$NAME:$version (:dev, $PUBLISHED:$version) and $archive ($((SECONDS - t0))s)"
}

# Milliseconds the command "$@" takes, median of 5 runs.
median_ms() {
  local i t0 times=()
  for i in 1 2 3 4 5; do
    t0=$(date +%s%N)
    "$@" >/dev/null
    times+=($((($(date +%s%N) - t0) / 1000000)))
  done
  printf '%s\n' "${times[@]}" | sort -n | sed -n 3p
}

mkdir -p "$OUT"
build_base
build_binary
build_image
base_size=$(podman image inspect --format '{{ .Size }}' "$BASE_IMAGE")
image_size=$(podman image inspect --format '{{ .Size }}' "localhost/$NAME:$version")
bin_size=$(stat -c %s "$OUT/bin/$arch/$NAME")
out=$(podman --runtime runc run --rm --network none "${IMAGE_ULIMITS[@]}" "localhost/$NAME:$version" --version) ||
  die "the image does not start: '$out'"
budget=$((40 * 1048576))
over=""
((image_size <= budget)) || over=" OVER the budget by $(mib $((image_size - budget)))"
echo "image.sh: $out: binary $(mib "$bin_size") (stripped), base $(mib "$base_size"), image $(mib "$image_size") uncompressed (budget 40 MiB)$over"
# --version in a container started as the chart starts it (podman run --rm included), and the
# same binary run directly.
in_container=$(median_ms podman --runtime runc run --rm --network none --read-only \
  --read-only-tmpfs=false --user 65532:65532 --cap-drop ALL --security-opt no-new-privileges \
  "${IMAGE_ULIMITS[@]}" "localhost/$NAME:$version" --version)
echo "image.sh: --version: $in_container ms in a container, $(median_ms "$OUT/bin/$arch/$NAME" --version) ms directly (medians of 5)"
