#!/usr/bin/env bash
# Tears down the one-box cluster: kills every process in every host namespace (every namespace named
# h<number>) and in the bridge namespace, then deletes the namespaces and their /etc/netns files.
# Idempotent; safe after a partial up.sh.
#   cluster/netns/down.sh
# (`ip netns del` alone would leave the processes running in a namespace that no longer has a name.)
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
if [ "$(id -u)" -ne 0 ]; then echo "error: down.sh must run as root" >&2; exit 1; fi
command -v ip >/dev/null 2>&1 || exit 0   # no iproute2: no namespaces either

namespaces=$(flow_netns_existing)
# Kill, then wait until each namespace is empty (a few rounds: a dying process may still fork).
for round in 1 2 3 4 5 6 7 8 9 10; do
  left=0
  for ns in $namespaces; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      left=1
      # shellcheck disable=SC2086
      kill -9 $pids 2>/dev/null || true
    fi
  done
  [ "$left" -eq 0 ] && break
  sleep 0.2
done
for ns in $namespaces; do
  if [ -n "$(ip netns pids "$ns" 2>/dev/null || true)" ]; then
    echo "warning: processes still in $ns: $(ip netns pids "$ns" | tr '\n' ' ')" >&2
  fi
  ip netns del "$ns" 2>/dev/null || true   # deleting the bridge namespace also deletes its veth ends
  rm -f "/etc/netns/$ns/hosts" "/etc/netns/$ns/resolv.conf"   # written by up.sh
  rmdir "/etc/netns/$ns" 2>/dev/null || true
done
rmdir /etc/netns 2>/dev/null || true
rm -f "$FLOW_NETNS_STATE/hosts" "$FLOW_NETNS_STATE"/hostfile.*
rmdir "$FLOW_NETNS_STATE" 2>/dev/null || true
left=$(flow_netns_existing)
if [ -n "$left" ]; then echo "error: could not delete namespaces: $left" >&2; exit 1; fi
exit 0
