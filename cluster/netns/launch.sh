#!/usr/bin/env bash
# Runs flow-mpirun across the one-box cluster made by up.sh, one rank per host by default:
#   cluster/netns/launch.sh -n HOSTS [--slots S] [mpirun options…] -- SUBCOMMAND [flow-mpirun flags…]
# e.g.  cluster/netns/launch.sh -n 3 -- train --threads 1 --epochs 3 --no-plots --out /tmp/runs/moons
# mpirun itself runs inside h1 (hostname h1): the daemons on h2…hN connect back to it over the test subnet,
# which they could not do to the root namespace. It gets:
#   a host file h1..hHOSTS with S slots each (S = --slots, default 1; ranks = HOSTS × S),
#   --mca plm_rsh_agent cluster/netns/agent.sh (and no tree spawn: mpirun starts every daemon itself),
#   --mca btl tcp,self (separate hosts: no shared memory between ranks), TCP restricted to the test subnet
#     (btl_tcp_if_include and oob_tcp_if_include),
#   --mca mpi_yield_when_idle 1 (waiting ranks yield the CPU: the hosts share this machine's cores),
#   --bind-to none, --allow-run-as-root when root, -x OPENBLAS_NUM_THREADS=1 (and OPENBLAS_CORETYPE if set),
#   TCP keepalives on the daemons' connections so that a host that vanishes from the network (cut link,
#     power loss) ends the job after about FLOW_KEEPALIVE_TIME + INTVL × PROBES seconds instead of hanging:
#     FLOW_KEEPALIVE="TIME INTVL PROBES" (default "5 2 3": 5 s idle, then 3 probes 2 s apart);
#     FLOW_KEEPALIVE=off keeps Open MPI's defaults (300 s, 20 s, 9 probes: 8 minutes).
# mpirun options given before `--` are passed on (e.g. -x FLOW_TEST_FAULT=kill@2:5, --report-bindings).
# Environment: FLOW_BIN (default: .build/release/flow-mpirun of this repository).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
usage() { echo "usage: $0 -n HOSTS [--slots S] [mpirun options…] -- SUBCOMMAND [flags…]" >&2; exit 64; }
hosts=""
slots=1
mpi_extra=()
while (($#)); do
  case "$1" in
    -n|--hosts) hosts="${2:-}"; shift 2 || usage ;;
    --slots) slots="${2:-}"; shift 2 || usage ;;
    --) shift; break ;;
    *) mpi_extra+=("$1"); shift ;;
  esac
done
(($#)) || usage
[[ "$hosts" =~ ^[1-9][0-9]*$ ]] || usage
[[ "$slots" =~ ^[1-9][0-9]*$ ]] || usage
if [ "$(id -u)" -ne 0 ]; then echo "error: launch.sh must run as root (ip netns exec)" >&2; exit 1; fi
have=$(cat "$FLOW_NETNS_STATE/hosts" 2>/dev/null || echo 0)
if [ "$have" -lt "$hosts" ] || ! [ -e "/run/netns/h$hosts" ]; then
  echo "error: the cluster has $have hosts, $hosts asked for: run cluster/netns/up.sh $hosts first" >&2
  exit 1
fi
bin="${FLOW_BIN:-$repo/.build/release/flow-mpirun}"
if [ ! -x "$bin" ]; then
  echo "error: $bin not found: build it with 'swift build -c release' or set FLOW_BIN" >&2
  exit 1
fi
mpirun="$(command -v mpirun || true)"
[ -n "$mpirun" ] || { echo "error: mpirun not found (apt install openmpi-bin)" >&2; exit 1; }

hostfile="$FLOW_NETNS_STATE/hostfile.$hosts.$slots"
if [ ! -s "$hostfile" ]; then
  tmp="$hostfile.$$"
  for i in $(seq 1 "$hosts"); do echo "h$i slots=$slots"; done > "$tmp"
  mv -f "$tmp" "$hostfile"
fi

mpi=("$mpirun" -np "$((hosts * slots))" --hostfile "$hostfile"
     --mca plm_rsh_agent "$here/agent.sh" --mca plm_rsh_no_tree_spawn 1
     --mca btl tcp,self
     --mca btl_tcp_if_include "$FLOW_NETNS_SUBNET" --mca oob_tcp_if_include "$FLOW_NETNS_SUBNET"
     --mca mpi_yield_when_idle 1 --bind-to none
     -x OPENBLAS_NUM_THREADS=1)
[ -n "${OPENBLAS_CORETYPE:-}" ] && mpi+=(-x OPENBLAS_CORETYPE)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
keepalive="${FLOW_KEEPALIVE:-5 2 3}"
if [ "$keepalive" != "off" ]; then
  read -r ka_time ka_intvl ka_probes <<<"$keepalive"
  mpi+=(--mca oob_tcp_keepalive_time "$ka_time" --mca oob_tcp_keepalive_intvl "$ka_intvl"
        --mca oob_tcp_keepalive_probes "$ka_probes")
fi
export OPENBLAS_NUM_THREADS=1
# exec all the way: this script's PID becomes mpirun's, so a signal to it reaches mpirun.
exec ip netns exec h1 unshare --uts sh -c 'hostname h1 && exec "$@"' launch \
  "${mpi[@]}" "${mpi_extra[@]}" "$bin" "$@"
