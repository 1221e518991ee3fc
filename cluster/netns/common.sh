# Shared settings of the one-box cluster scripts (sourced, not run).
# Hosts h1..hN are network namespaces; their eth0 veths join the bridge br0 that lives in its own
# namespace ($FLOW_NETNS_BRIDGE, default flowbr). Nothing is created in the root namespace and no host
# has a route beyond the test subnet.
FLOW_NETNS_BRIDGE="${FLOW_NETNS_BRIDGE:-flowbr}"
FLOW_NETNS_PREFIX="${FLOW_NETNS_PREFIX:-10.77.0}"   # h$i = $FLOW_NETNS_PREFIX.$i/24
FLOW_NETNS_SUBNET="$FLOW_NETNS_PREFIX.0/24"
FLOW_NETNS_MTU="${FLOW_NETNS_MTU:-65535}"
FLOW_NETNS_STATE="${FLOW_NETNS_STATE:-/run/flow-netns}"  # up.sh: file "hosts" (N); launch.sh: host files

# Installs iproute2 (ip), util-linux (unshare), procps (ps) and iputils-ping (up.sh's check) when missing.
flow_netns_prerequisites() {
  local missing=()
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
  command -v ps >/dev/null 2>&1 || missing+=(procps)
  command -v ping >/dev/null 2>&1 || missing+=(iputils-ping)
  if ((${#missing[@]})); then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      echo "error: missing ${missing[*]} (install them, as root: apt-get install ${missing[*]})" >&2
      return 1
    fi
    echo "installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
}

# The namespaces of the cluster that exist now: the hosts h<number> and the bridge's.
flow_netns_existing() {
  ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^(h[0-9]+|$FLOW_NETNS_BRIDGE)\$" || true
}
