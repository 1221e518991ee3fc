#!/usr/bin/env bash
# Creates a cluster of N "hosts" on this machine, for trying and testing flow-mpirun across hosts over TCP:
#   cluster/netns/up.sh N          (default 3; as root)
# Host hI is the network namespace hI with one interface, eth0 (a veth, MTU 65535, address 10.77.0.I/24),
# and loopback. The other ends of the veths are joined by the bridge br0, which lives in a namespace of its
# own (flowbr), so the root namespace is left untouched. No host has a default route: only the test subnet
# (and each host's loopback) is reachable. /etc/netns/hI/hosts names every host (ip netns exec mounts it
# over /etc/hosts), and resolv.conf there is empty, so no name lookup leaves the cluster.
# Idempotent: an existing cluster is torn down first (down.sh); a failure half-way tears down what was made.
# Environment: FLOW_NETNS_PREFIX (default 10.77.0), FLOW_NETNS_MTU (65535), FLOW_NETNS_BRIDGE (flowbr).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
n="${1:-3}"
if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 250 ]; then
  echo "usage: $0 N   (1 ≤ N ≤ 250 hosts)" >&2; exit 64
fi
if [ "$(id -u)" -ne 0 ]; then echo "error: up.sh must run as root (it creates network namespaces)" >&2; exit 1; fi
flow_netns_prerequisites

"$here/down.sh"
trap 'status=$?; echo "error: up.sh failed (status $status); tearing down what was made" >&2; "$here/down.sh"; exit $status' ERR

br="$FLOW_NETNS_BRIDGE"
ip netns add "$br"
ip -n "$br" link set lo up
ip -n "$br" link add br0 mtu "$FLOW_NETNS_MTU" type bridge
ip -n "$br" link set br0 up

hosts_file="127.0.0.1 localhost"$'\n'
for i in $(seq 1 "$n"); do hosts_file+="$FLOW_NETNS_PREFIX.$i h$i"$'\n'; done

for i in $(seq 1 "$n"); do
  h="h$i"
  ip netns add "$h"
  ip -n "$h" link set lo up
  # Created inside the bridge namespace, the host end moved straight into its namespace as eth0.
  ip -n "$br" link add "v$h" mtu "$FLOW_NETNS_MTU" type veth peer name eth0 mtu "$FLOW_NETNS_MTU" netns "$h"
  ip -n "$br" link set "v$h" master br0
  ip -n "$br" link set "v$h" up
  ip -n "$h" addr add "$FLOW_NETNS_PREFIX.$i/24" dev eth0
  ip -n "$h" link set eth0 up
  mkdir -p "/etc/netns/$h"
  printf '%s' "$hosts_file" > "/etc/netns/$h/hosts"
  : > "/etc/netns/$h/resolv.conf"
done
mkdir -p "$FLOW_NETNS_STATE"
echo "$n" > "$FLOW_NETNS_STATE/hosts"

# Every host must reach every other one (the bridge may need a moment to forward).
for i in $(seq 1 "$n"); do
  for j in $(seq 1 "$n"); do
    ok=0
    for _ in $(seq 1 50); do
      if ip netns exec "h$i" ping -c 1 -W 1 -q "$FLOW_NETNS_PREFIX.$j" >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.1
    done
    if [ "$ok" -ne 1 ]; then echo "error: h$i cannot reach h$j ($FLOW_NETNS_PREFIX.$j)" >&2; false; fi
  done
done
trap - ERR
echo "cluster up: h1..h$n on $FLOW_NETNS_SUBNET (bridge namespace $br, MTU $FLOW_NETNS_MTU)"
