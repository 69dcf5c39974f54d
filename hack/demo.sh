#!/usr/bin/env bash
# `make demo`: the main job on a local cluster. Brings up the control plane, installs the CRDs,
# applies the example workload and a pod-delete experiment, runs the operator until the run is
# finished, and shows the result. Re-runnable: the demo namespace is recreated each time.
set -euo pipefail
cd "$(dirname "$0")/.."

NS=aftershock-demo
KUBECONFIG_PATH=$(python3 hack/cluster.py kubeconfig)
export KUBECONFIG="$KUBECONFIG_PATH"
KUBECTL=(.venv/bin/kubectl)
LOG=.cluster/demo-operator.log

echo "== 1/5 local control plane"
python3 hack/cluster.py up >/dev/null

echo "== 2/5 CRDs"
"${KUBECTL[@]}" apply --server-side --force-conflicts -f crds/ >/dev/null
"${KUBECTL[@]}" wait --for=condition=Established crd/chaosexperiments.aftershock.dev crd/chaosruns.aftershock.dev --timeout=30s >/dev/null

echo "== 3/5 operator (log: $LOG)"
WEBHOOK_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/aftershock run --namespace "$NS" --metrics-port 0 --health-port 0 --bind 127.0.0.1 \
  --webhook-port "$WEBHOOK_PORT" --webhook-config aftershock.demo >"$LOG" 2>&1 &
OPERATOR=$!
trap 'kill $OPERATOR 2>/dev/null; wait $OPERATOR 2>/dev/null || true; "${KUBECTL[@]}" delete validatingwebhookconfiguration,mutatingwebhookconfiguration aftershock.demo --ignore-not-found >/dev/null' EXIT
for _ in $(seq 1 60); do   # the admission webhook is registered once the operator is up
  "${KUBECTL[@]}" get validatingwebhookconfiguration aftershock.demo >/dev/null 2>&1 && break
  sleep 0.5
done
echo "== 4/5 example workload in namespace $NS (the previous demo's objects are released by the operator)"
# the previous demo's experiments first, while the operator watches: it aborts and releases them
"${KUBECTL[@]}" -n "$NS" delete chaosexperiments --all --ignore-not-found --wait=true >/dev/null 2>&1 || true
"${KUBECTL[@]}" delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
"${KUBECTL[@]}" create namespace "$NS" >/dev/null
"${KUBECTL[@]}" label namespace "$NS" aftershock.dev/chaos=enabled >/dev/null   # the opt-in
"${KUBECTL[@]}" apply -f examples/policy.yaml >/dev/null                         # the guardrails
"${KUBECTL[@]}" -n "$NS" apply -f examples/workload.yaml >/dev/null
"${KUBECTL[@]}" -n "$NS" rollout status deployment/checkout --timeout=60s

echo "== 5/5 experiment"
# the mutating webhook stamps what it checked (docs/security.md): wait until it answers, so the
# experiment is not created unchecked (and then refused to run) while the operator is starting
for _ in $(seq 1 60); do
  stamp=$("${KUBECTL[@]}" -n "$NS" apply --dry-run=server -f examples/pod-delete.yaml \
    -o jsonpath='{.metadata.annotations.aftershock\.dev/review}' 2>/dev/null || true)
  [ -n "$stamp" ] && break
  sleep 0.5
done
"${KUBECTL[@]}" -n "$NS" apply -f examples/pod-delete.yaml
echo "   waiting for the run to finish..."
for _ in $(seq 1 240); do
  phase=$("${KUBECTL[@]}" -n "$NS" get chaosruns -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
  case "$phase" in Completed|Aborted|Skipped|Errored) break ;; esac
  if ! kill -0 "$OPERATOR" 2>/dev/null; then echo "operator exited; see $LOG"; tail -20 "$LOG"; exit 1; fi
  sleep 0.5
done

echo "== result"
"${KUBECTL[@]}" -n "$NS" get chaosexperiments,chaosruns
echo
.venv/bin/aftershock status -n "$NS"
echo
echo "== the failure-mode report (docs/reports.md; --format markdown|json|html)"
.venv/bin/aftershock report -n "$NS"
echo
echo "Inspect more: kubectl --kubeconfig $KUBECONFIG_PATH -n $NS get chaosrun -o yaml"
echo "Stop the cluster: make cluster-down"
