#!/usr/bin/env bash
# Runs flow-mpirun under mpirun with sensible defaults:
#   cluster/launch.sh [-n RANKS] [--hostfile FILE] SUBCOMMAND [flags…]      (our options before the subcommand)
# RANKS defaults to 2, or inside a Slurm allocation to its task count ($SLURM_NTASKS; mpirun then takes the
# hosts from Slurm, so no host file is needed).
# Defaults it sets (override with the environment):
#   FLOW_BIN      the flow-mpirun binary (default: .build/release/flow-mpirun next to this script's repo)
#   FLOW_BIND     mpirun binding: "none" (default: each rank's worker threads may use every core it is
#                 given) or e.g. "core" / "socket"
#   FLOW_IFACE    restrict MPI's TCP traffic to this interface or subnet (e.g. eth0 or 10.0.0.0/24)
#   FLOW_KEEPALIVE "TIME INTERVAL PROBES" for Open MPI's runtime TCP keepalive (default "5 2 3": a host whose
#                 link dies is noticed in ~11 s and the job ends instead of hanging), or "off"
#   FLOW_KILL_TIMEOUT seconds mpirun gives the ranks between the SIGTERM it sends them when it receives SIGTERM
#                 or SIGINT and its SIGKILL (Open MPI's odls_base_sigkill_timeout; default here 30, Open MPI's 1),
#                 so that the ranks can stop after the same step and write their checkpoint (docs/stopping.md)
#   FLOW_MPIRUN_ARGS  extra mpirun arguments
# Exported to every rank: OPENBLAS_NUM_THREADS=1 (BLAS stays single-threaded; flow-mpirun parallelises
# with its own workers) and OPENBLAS_CORETYPE when set here. Adds --allow-run-as-root when run as root and
# --oversubscribe when more ranks than cores are requested on one host (outside Slurm).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
ranks="${SLURM_NTASKS:-2}"
hostfile=""
args=()
# Our options come first; everything from the subcommand on is flow-mpirun's (its own -n stays its own).
while (($#)); do
  case "$1" in
    -n|-np) ranks="${2:?-n needs a rank count}"; shift 2 ;;
    --hostfile) hostfile="${2:?--hostfile needs a file}"; shift 2 ;;
    *) break ;;
  esac
done
args=("$@")
if ! [[ "$ranks" =~ ^[1-9][0-9]*$ ]]; then echo "error: invalid rank count '$ranks'" >&2; exit 64; fi
bin="${FLOW_BIN:-$repo/.build/release/flow-mpirun}"
if [ ! -x "$bin" ]; then
  echo "error: $bin not found: build it with 'swift build -c release' or set FLOW_BIN" >&2
  exit 1
fi
mpi=(mpirun -np "$ranks" --bind-to "${FLOW_BIND:-none}" -x OPENBLAS_NUM_THREADS=1)
[ -n "${OPENBLAS_CORETYPE:-}" ] && mpi+=(-x OPENBLAS_CORETYPE)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
if [ -n "$hostfile" ]; then
  mpi+=(--hostfile "$hostfile")
elif [ -z "${SLURM_JOB_ID:-}" ] && [ "$ranks" -gt "$(nproc)" ]; then
  # (Inside a Slurm allocation mpirun reads the task slots from Slurm; none are added.)
  mpi+=(--oversubscribe --mca mpi_yield_when_idle 1)
fi
mpi+=(--mca odls_base_sigkill_timeout "${FLOW_KILL_TIMEOUT:-30}")
keepalive="${FLOW_KEEPALIVE:-5 2 3}"
if [ "$keepalive" != "off" ]; then
  read -r ka_time ka_intvl ka_probes <<<"$keepalive"
  mpi+=(--mca oob_tcp_keepalive_time "$ka_time" --mca oob_tcp_keepalive_intvl "$ka_intvl" --mca oob_tcp_keepalive_probes "$ka_probes")
fi
if [ -n "${FLOW_IFACE:-}" ]; then
  mpi+=(--mca btl_tcp_if_include "$FLOW_IFACE" --mca oob_tcp_if_include "$FLOW_IFACE")
fi
# shellcheck disable=SC2206
extra=(${FLOW_MPIRUN_ARGS:-})
exec "${mpi[@]}" "${extra[@]}" "$bin" "${args[@]}"
