#!/usr/bin/env bash
# Configures and builds ringkv with CMake and Ninja.
#
#   scripts/build.sh [--type Release|RelWithDebInfo|Debug] [--dir build] [--target t ...]
#                    [--configure-only] [-- extra cmake arguments]
#
# Defaults: RelWithDebInfo into build/, every target. Uses ccache when it is installed and at most
# two parallel jobs unless JOBS says otherwise (the machines this runs on are small and shared).
# The server ends up at <dir>/ringkv-server.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TYPE=RelWithDebInfo
DIR=build
TARGETS=()
CMAKE_ARGS=()
CONFIGURE_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --type) TYPE="$2"; shift 2 ;;
    --dir) DIR="$2"; shift 2 ;;
    --target) TARGETS+=("$2"); shift 2 ;;
    --configure-only) CONFIGURE_ONLY=1; shift ;;
    --) shift; CMAKE_ARGS+=("$@"); break ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

cd "$ROOT"
for tool in cmake ninja; do
  if ! command -v "$tool" >/dev/null; then
    echo "build.sh: '$tool' is not installed; run scripts/install-deps.sh first" >&2
    exit 1
  fi
done
LAUNCHER=()
if command -v ccache >/dev/null; then
  LAUNCHER=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

cmake -S . -B "$DIR" -G Ninja -DCMAKE_BUILD_TYPE="$TYPE" "${LAUNCHER[@]}" "${CMAKE_ARGS[@]}"
[ "$CONFIGURE_ONLY" = 1 ] || ninja -C "$DIR" -j "${JOBS:-2}" "${TARGETS[@]}"
