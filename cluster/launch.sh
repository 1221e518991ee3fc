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
#   FLOW_MPIRUN_ARGS  extra mpirun arguments
# Exported to every rank: OPENBLAS_NUM_THREADS=1 (BLAS stays single-threaded; flow-mpirun parallelises
# with its own workers), OPENBLAS_CORETYPE when set here, and FLOW_LAUNCHER (this script as it was called, for
# the commands flow-mpirun prints, e.g. "resume with: cluster/launch.sh -n 2 train --resume …"). Adds --allow-run-as-root when run as root and
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
# How to launch the job again, for the commands flow-mpirun prints (train's "resume with:" after a stop).
export FLOW_LAUNCHER="$0${hostfile:+ --hostfile $hostfile}"
mpi+=(-x FLOW_LAUNCHER)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
if [ -n "$hostfile" ]; then
  mpi+=(--hostfile "$hostfile")
elif [ -z "${SLURM_JOB_ID:-}" ] && [ "$ranks" -gt "$(nproc)" ]; then
  # (Inside a Slurm allocation mpirun reads the task slots from Slurm; none are added.)
  mpi+=(--oversubscribe --mca mpi_yield_when_idle 1)
fi
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
# Stopping (docs/stopping.md). mpirun turns a SIGTERM or SIGINT into SIGTERM to every rank and SIGKILL one
# second later (Open MPI's odls_base_sigkill_timeout), which can cut the ranks' checkpoint short; it forwards
# SIGUSR1 and SIGUSR2 as they are. So the first SIGTERM or SIGINT this script receives goes on to mpirun as
# SIGUSR1: every rank stops after the step in progress, rank 0 writes a checkpoint, and this script exits with
# 128 + the signal it received. A second one goes on as SIGTERM: mpirun kills the job (about 2 s).
# mpirun runs in a process group of its own (job control on for this one command), so that a Ctrl-C at a
# terminal reaches this script alone, not mpirun's kill path.
set -m
"${mpi[@]}" "${extra[@]}" "$bin" "${args[@]}" &
pid=$!
set +m
stops=0 received=0 trapped=0
forward() {  # forward CODE NAME
  trapped=1
  if [ "$stops" -eq 0 ]; then
    received=$1
    echo "launch.sh: $2: asking every rank to stop after the step in progress and write a checkpoint (SIGUSR1 to mpirun); $2 again kills the job" >&2
    kill -USR1 "$pid" 2>/dev/null || true
  else
    echo "launch.sh: $2 again: ending the job now (SIGTERM to mpirun)" >&2
    kill -TERM "$pid" 2>/dev/null || true
  fi
  stops=$((stops + 1))
}
trap 'forward 130 SIGINT' INT
trap 'forward 143 SIGTERM' TERM
trap 'trapped=1; kill -USR1 "$pid" 2>/dev/null || true' USR1
trap 'trapped=1; kill -USR2 "$pid" 2>/dev/null || true' USR2
status=0
while :; do
  trapped=0
  set +e
  wait "$pid"
  s=$?
  set -e
  # wait returns early when a trapped signal arrives: wait again until mpirun itself has ended.
  if [ "$trapped" -eq 0 ]; then status=$s; break; fi
  if [ "$s" -ne 127 ]; then status=$s; fi
  kill -0 "$pid" 2>/dev/null || { set +e; wait "$pid" 2>/dev/null; s=$?; set -e; [ "$s" -ne 127 ] && status=$s; break; }
done
if [ "$stops" -gt 0 ] && [ "$status" -ne 0 ]; then exit "$received"; fi
exit "$status"
