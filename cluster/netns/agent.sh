#!/usr/bin/env bash
# Open MPI's "ssh" for the one-box cluster (--mca plm_rsh_agent cluster/netns/agent.sh):
#   agent.sh [ssh options] HOST COMMAND…
# runs COMMAND inside HOST's network namespace, the way ssh runs it on a remote host: the words of
# COMMAND are joined with spaces and handed to `sh -c` (Open MPI quotes them for a remote shell). HOST is
# hI, user@hI or hI's address (10.77.0.I). ssh options (-x, -o OPT, -p PORT, …) are accepted and ignored.
# The command runs with its own UTS namespace whose hostname is hI (unshare --uts), so each host has its
# own name, as Open MPI expects of separate machines. Exit status: the command's, or 255 (as ssh) when
# the host does not exist.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
while (($#)); do
  case "$1" in
    --) shift; break ;;
    -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;            # ssh options that take a value
    -[bcDEeFIiJLlmOopQRSWw]?*) shift ;;            # … given in the same word (-oBatchMode=yes)
    -*) shift ;;                                   # flags (-x, -T, -q, -4, …)
    *) break ;;
  esac
done
if (($# < 2)); then echo "usage: $0 [ssh options] HOST COMMAND…" >&2; exit 255; fi
host="${1##*@}"; shift
case "$host" in
  "$FLOW_NETNS_PREFIX".*) ns="h${host##*.}" ;;
  *) ns="$host" ;;
esac
if ! [[ "$ns" =~ ^h[0-9]+$ ]] || ! [ -e "/run/netns/$ns" ]; then
  echo "agent.sh: no such host: $host (is the cluster up? cluster/netns/up.sh N)" >&2
  exit 255
fi
# One process all the way down (exec at every step): what Open MPI started is the remote command itself,
# so killing it, or everything in the namespace, is seen at once by its parent.
exec ip netns exec "$ns" unshare --uts sh -c 'hostname "$1" && exec sh -c "$2"' agent "$ns" "$*"
