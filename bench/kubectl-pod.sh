#!/usr/bin/env bash
# One pod's share of the runbook fan-out benchmark's kubectl baselines (docs/benchmarks.md):
# what a runbook author writes with stock kubectl to run some steps on a pod. Add a debug
# container (`kubectl debug`), poll until it runs, one `kubectl exec` per step, one more to stop
# the container (kubectl leaves it running otherwise).
#
#   bench/kubectl-pod.sh NAMESPACE POD IMAGE STEP...
#
# POD is a name or `pod/NAME` (as `kubectl get pods -o name` prints it). KUBECONFIG (and
# KUBECTL, default `kubectl`) say which cluster. Each STEP runs with `sh -c`. Prints one line,
# `POD: CODE...` with the steps' exit codes; exits 0 if the pod was done (whatever the codes),
# 1 if its debug container could not be added or did not start.
set -u
if [ $# -lt 3 ]; then
  echo "usage: $0 NAMESPACE POD IMAGE STEP..." >&2
  exit 2
fi
ns=$1 pod=$2 image=$3
shift 3
kubectl=${KUBECTL:-kubectl}
name="dbg-$RANDOM$RANDOM"
if ! "$kubectl" debug -n "$ns" "$pod" --image="$image" --target=app --container="$name" \
    --attach=false --quiet >/dev/null 2>&1; then
  echo "$pod: kubectl debug failed"
  exit 1
fi
tries=0
until [ -n "$("$kubectl" get -n "$ns" "$pod" \
    -o jsonpath="{.status.ephemeralContainerStatuses[?(@.name==\"$name\")].state.running.startedAt}")" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 300 ]; then
    echo "$pod: $name did not start"
    exit 1
  fi
  sleep 0.2
done
codes=""
for step in "$@"; do
  "$kubectl" exec -n "$ns" "$pod" -c "$name" -- sh -c "$step" >/dev/null 2>&1
  codes="$codes $?"
done
"$kubectl" exec -n "$ns" "$pod" -c "$name" -- distroless-debug-agent stop >/dev/null 2>&1
echo "$pod:$codes"
