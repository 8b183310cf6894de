#!/usr/bin/env bash
# Installs what is missing (scripts/install-deps.sh), builds ringkv (Release, into build/) and
# starts a local cluster of three nodes on 127.0.0.1:7001..7003 with scripts/cluster.sh (in the
# background; `scripts/cluster.sh stop` stops it), then prints how to connect.
#
#   scripts/start.sh [--<directive> <value> ...]     e.g. scripts/start.sh --io-threads 2
#
# Extra arguments are passed to every node's ringkv-server.
# Connect with:  redis-cli -p 7001     (any node: 7001, 7002 or 7003)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD_DIR="${BUILD_DIR:-build}"  # override for a second checkout's build


"$ROOT/scripts/install-deps.sh"  # does nothing when every package is installed
"$ROOT/scripts/build.sh" --type Release --dir "$BUILD_DIR" --target ringkv-server

# Three nodes n1..n3 on 127.0.0.1:7001..7003, joined into one ring; cluster.sh prints how to
# connect (any node accepts any command) and where the logs are. Running it again is harmless.
BUILD_DIR="$BUILD_DIR" "$ROOT/scripts/cluster.sh" start 3 -- "$@"
cat <<EOF

Try:
    redis-cli -p 7002 SET greeting hello && redis-cli -p 7003 GET greeting
    redis-cli -p 7001 RING INFO
    redis-benchmark -p 7001 -t set,get -q
EOF
