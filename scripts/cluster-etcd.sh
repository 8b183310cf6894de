#!/usr/bin/env bash
# scripts/cluster.sh with a local etcd as the configuration service: starts etcd (Debian's
# etcd-server, /usr/bin/etcd) on 127.0.0.1:2479 (peer port 2480) with its data in
# .ringkv-cluster-etcd/, then k ringkv nodes on 127.0.0.1:7001..700k, each started with
# --discovery etcd://127.0.0.1:2479/ringkv and joined with RING ADDSERVER (the first one too:
# with etcd the ring starts empty).
#
#   scripts/cluster-etcd.sh start [k] [-- <ringkv-server flags>...]
#   scripts/cluster-etcd.sh stop          # the nodes, then etcd (its data is removed)
#   scripts/cluster-etcd.sh status [k]
#
# Same environment variables as scripts/cluster.sh; RINGKV_ETCD_PORT moves etcd's ports.
set -euo pipefail
exec "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/cluster.sh" --etcd "$@"
