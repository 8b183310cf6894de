#!/usr/bin/env bash
# Installs, from Debian 12's packages, everything ringkv needs to build, test and benchmark:
# compilers and build tools, libuv/OpenSSL/hiredis headers, Catch2, Redis (reference server,
# redis-cli, redis-benchmark), Debian's python3-redis, clang with libFuzzer, nutcracker, etcd.
#
# Does nothing when every package is already installed. Otherwise runs apt-get update and
# apt-get install, as root or through sudo. Services that Debian starts when it installs a
# package (redis-server on 6379, etcd on 2379, nutcracker) are stopped and disabled again:
# ringkv's tests and scripts start their own instances on their own ports.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libuv1-dev libssl-dev libhiredis-dev catch2 nlohmann-json3-dev openssl
  redis-server redis-tools python3-redis
  clang libclang-rt-14-dev
  nutcracker etcd-server etcd-client
)
# Packages whose Debian install starts a system service we do not want running.
SERVICES_OF=(redis-server:redis-server etcd-server:etcd nutcracker:nutcracker)

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "install-deps.sh: this script needs Debian's dpkg and apt-get (Debian 12 bookworm)" >&2
  exit 1
fi

MISSING=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || MISSING+=("$p")
done
if [ ${#MISSING[@]} -eq 0 ]; then
  echo "install-deps.sh: all ${#PACKAGES[@]} packages are installed"
  exit 0
fi
echo "install-deps.sh: installing ${MISSING[*]}"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    SUDO=(sudo)
  else
    echo "install-deps.sh: not root and sudo is not available; as root, run:" >&2
    echo "  apt-get update && apt-get install -y ${MISSING[*]}" >&2
    exit 1
  fi
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
  "${MISSING[@]}"

# Stop and disable the services of packages installed just now (a service the machine already
# had is left alone: someone may rely on it).
stop_service() {
  local svc="$1"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    "${SUDO[@]}" systemctl disable --now "$svc" >/dev/null 2>&1 || true
  else
    if command -v service >/dev/null; then
      "${SUDO[@]}" service "$svc" stop >/dev/null 2>&1 || true
    fi
    if command -v update-rc.d >/dev/null; then
      "${SUDO[@]}" update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
  fi
}
for entry in "${SERVICES_OF[@]}"; do
  pkg="${entry%%:*}"
  svc="${entry#*:}"
  for m in "${MISSING[@]}"; do
    if [ "$m" = "$pkg" ]; then
      stop_service "$svc"
      echo "install-deps.sh: stopped and disabled the '$svc' service that $pkg installs"
    fi
  done
done

# Verify: every package installed, and no redis-server left listening on 6379 by the package.
STILL=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || STILL+=("$p")
done
if [ ${#STILL[@]} -ne 0 ]; then
  echo "install-deps.sh: still missing after apt-get: ${STILL[*]}" >&2
  exit 1
fi
for m in "${MISSING[@]}"; do
  if [ "$m" = redis-server ] && (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
    echo "install-deps.sh: warning: something still listens on 127.0.0.1:6379" \
      "(stop it before scripts/start.sh, which uses that port)" >&2
  fi
done
echo "install-deps.sh: done"
