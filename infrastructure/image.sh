#!/usr/bin/env bash
# Build the bot's container image from a wheelhouse made on this machine.
#
#   infrastructure/image.sh wheels            make infrastructure/build/wheels (cached)
#   infrastructure/image.sh base NAME:TAG     a Debian bookworm base image made with mmdebstrap
#                                             and imported into podman (cached tarball)
#   infrastructure/image.sh build NAME:TAG    wheels, then build infrastructure/Dockerfile
#
# Environment:
#   PYTHON          the Python that builds the wheels (default python3.11; the image's Python
#                   must be the same minor version)
#   BASE_IMAGE      passed to the Dockerfile as --build-arg BASE_IMAGE (default: its own)
#   CONTAINER_BUILD the build command (default "docker build"; on hosts without Docker, e.g.
#                   "podman --cgroup-manager=cgroupfs build --isolation=chroot")
#   BUILD_DIR       where the wheelhouse and base tarball are kept (default infrastructure/build)
#
# The wheelhouse holds the runtime dependencies of pyproject.toml (no extras), so the image
# installs with `pip install --no-index` and never reaches a package index during the build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/infrastructure/build}"
PYTHON="${PYTHON:-python3.11}"
SUITE="bookworm"

die() {
  echo "image.sh: $*" >&2
  exit 1
}

need() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: $2"
}

# The runtime requirements, one per line, read from pyproject.toml.
requirements() {
  "$PYTHON" - "$ROOT/pyproject.toml" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    project = tomllib.load(handle)["project"]
print("\n".join(project["dependencies"]))
PY
}

wheels() {
  need "$PYTHON" "set PYTHON to a Python 3.11 interpreter"
  local dir="$BUILD_DIR/wheels" wanted
  wanted="$(requirements)
# python $("$PYTHON" -c 'import sys; print(*sys.version_info[:2], sep=".")')"
  if [[ -f "$dir/requirements.txt" ]] && [[ "$(cat "$dir/requirements.txt")" == "$wanted" ]]; then
    echo "image.sh: wheelhouse up to date ($(find "$dir" -name '*.whl' | wc -l) wheels)"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  printf '%s\n' "$wanted" >"$dir/requirements.in"
  "$PYTHON" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$dir" \
    -r "$dir/requirements.in"
  mv "$dir/requirements.in" "$dir/requirements.txt"
  echo "image.sh: wheelhouse ready ($(find "$dir" -name '*.whl' | wc -l) wheels)"
}

# "deb URL SUITE main" for each bookworm suite, with the mirror URLs apt on this host uses.
apt_sources() {
  need apt-cache "mmdebstrap needs a Debian host with apt"
  local suite url
  for suite in "$SUITE" "$SUITE-updates" "$SUITE-security"; do
    url="$(apt-cache policy | awk -v want="$suite/main" '$3 == want { print $2; exit }')"
    if [[ -n "$url" ]]; then
      echo "deb $url $suite main"
    elif [[ "$suite" == "$SUITE" ]]; then
      die "apt on this host has no source for $SUITE/main (see /etc/apt/sources.list*)"
    fi
  done
}

base() {
  local name="${1:?usage: image.sh base NAME:TAG}" tarball="$BUILD_DIR/base-$SUITE.tar"
  need mmdebstrap "apt-get install mmdebstrap"
  need podman "apt-get install podman"
  if [[ ! -s "$tarball" ]]; then
    mkdir -p "$BUILD_DIR"
    local -a mirrors=()
    mapfile -t mirrors < <(apt_sources)
    mmdebstrap --quiet --variant=minbase --format=tar \
      --include=python3,python3-venv,ca-certificates,passwd \
      "$SUITE" "$tarball.partial" "${mirrors[@]}"
    mv "$tarball.partial" "$tarball"
  fi
  if ! podman image exists "$name"; then
    podman import --quiet "$tarball" "$name" >/dev/null
  fi
  echo "image.sh: base image $name ready"
}

build() {
  local name="${1:?usage: image.sh build NAME:TAG}"
  local -a command=()
  read -ra command <<<"${CONTAINER_BUILD:-docker build}"
  need "${command[0]}" "install Docker, or set CONTAINER_BUILD (e.g. podman build)"
  wheels
  local -a args=(--file "$ROOT/infrastructure/Dockerfile" --tag "$name")
  if [[ -n "${BASE_IMAGE:-}" ]]; then
    args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
  fi
  "${command[@]}" "${args[@]}" "$ROOT"
}

case "${1:-}" in
  wheels) wheels ;;
  base) base "${2:-}" ;;
  build) build "${2:-}" ;;
  *) die "usage: image.sh wheels | base NAME:TAG | build NAME:TAG" ;;
esac
