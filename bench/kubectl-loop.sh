#!/usr/bin/env bash
# The sequential baseline of the runbook fan-out benchmark (docs/benchmarks.md): the pods of a
# selector one at a time, each done by bench/kubectl-pod.sh (a debug container, a
# `kubectl exec` per step, one to stop it).
#
#   bench/kubectl-loop.sh NAMESPACE SELECTOR IMAGE STEP...
#
# KUBECONFIG (and KUBECTL, default `kubectl`) say which cluster. Each STEP runs with `sh -c`.
# Prints one line per pod with the steps' exit codes; exits 0 if every pod was done.
set -u
if [ $# -lt 3 ]; then
  echo "usage: $0 NAMESPACE SELECTOR IMAGE STEP..." >&2
  exit 2
fi
ns=$1 selector=$2 image=$3
shift 3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pods=$("${KUBECTL:-kubectl}" get pods -n "$ns" -l "$selector" -o name) || exit 1
failed=0
for pod in $pods; do
  bash "$here/kubectl-pod.sh" "$ns" "$pod" "$image" "$@" || failed=1
done
exit "$failed"
