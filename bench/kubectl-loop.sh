#!/usr/bin/env bash
# The baseline of the runbook fan-out benchmark (docs/benchmarks.md): what a runbook author
# writes today with stock kubectl to run the same steps on every pod of a selector. One pod at
# a time: add a debug container (`kubectl debug`), wait until it runs, one `kubectl exec` per
# step, one more to stop the container (kubectl leaves it running otherwise).
#
#   bench/kubectl-loop.sh NAMESPACE SELECTOR IMAGE STEP...
#
# KUBECONFIG (and KUBECTL, default `kubectl`) say which cluster. Each STEP runs with `sh -c`.
# Prints one line per pod with the steps' exit codes; exits 0 if every pod was done.
set -u
ns=$1 selector=$2 image=$3
shift 3
kubectl=${KUBECTL:-kubectl}
failed=0
for pod in $("$kubectl" get pods -n "$ns" -l "$selector" -o name); do
  name="dbg-$RANDOM$RANDOM"
  if ! "$kubectl" debug -n "$ns" "$pod" --image="$image" --target=app --container="$name" \
      --attach=false --quiet >/dev/null 2>&1; then
    echo "$pod: kubectl debug failed"; failed=1; continue
  fi
  tries=0
  until [ -n "$("$kubectl" get -n "$ns" "$pod" \
      -o jsonpath="{.status.ephemeralContainerStatuses[?(@.name==\"$name\")].state.running.startedAt}")" ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 300 ]; then echo "$pod: $name did not start"; failed=1; continue 2; fi
    sleep 0.2
  done
  codes=""
  for step in "$@"; do
    "$kubectl" exec -n "$ns" "$pod" -c "$name" -- sh -c "$step" >/dev/null 2>&1
    codes="$codes $?"
  done
  "$kubectl" exec -n "$ns" "$pod" -c "$name" -- distroless-debug-agent stop >/dev/null 2>&1
  echo "$pod:$codes"
done
exit "$failed"
