#!/usr/bin/env bash
# The parallel baseline of the runbook fan-out benchmark (docs/benchmarks.md): what a runbook
# author who knows shell writes, bench/kubectl-pod.sh on the pods of a selector, PARALLEL
# (default 10) at a time with `xargs -P`.
#
#   bench/kubectl-xargs.sh NAMESPACE SELECTOR IMAGE STEP...
#
# KUBECONFIG (and KUBECTL, default `kubectl`) say which cluster. Each STEP runs with `sh -c`.
# Prints one line per pod with the steps' exit codes, in the order pods finish; exits 0 if
# every pod was done.
set -u -o pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 NAMESPACE SELECTOR IMAGE STEP..." >&2
  exit 2
fi
ns=$1 selector=$2 image=$3
shift 3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# xargs appends the pod to the command's arguments; the inner bash moves it to second place,
# so that no STEP is rewritten (as `xargs -I{}` would do to a STEP containing `{}`).
# shellcheck disable=SC2016 # the single-quoted script expands in the inner bash
"${KUBECTL:-kubectl}" get pods -n "$ns" -l "$selector" -o name |
  xargs -P "${PARALLEL:-10}" -n 1 \
    bash -c 'pod=${!#}; exec bash "$0" "$1" "$pod" "${@:2:$#-2}"' \
    "$here/kubectl-pod.sh" "$ns" "$image" "$@"
