#!/usr/bin/env bash
# Step 8 of "Autoscaling with KEDA": remove what install.sh installed. Running it again, or on a
# cluster where nothing is installed, changes nothing.
#
# helm leaves the Prometheus operator's CRDs (monitoring.coreos.com) and the namespace behind, as
# other releases may use them. PURGE=1 deletes both too — only on a cluster where nothing else
# uses the Prometheus operator.
#
# Environment: HELM, KUBECTL (default helm, kubectl), HELM_TIMEOUT (default 10m), PURGE (0/1).
set -euo pipefail

HELM="${HELM:-helm}"
KUBECTL="${KUBECTL:-kubectl}"
HELM_TIMEOUT="${HELM_TIMEOUT:-10m}"
PURGE="${PURGE:-0}"
NAMESPACE="monitoring"

run() {
  printf '+ %s\n' "$*" >&2
  "$@"
}

uninstall_release() {
  local release="$1"
  if "$HELM" status "$release" --namespace "$NAMESPACE" >/dev/null 2>&1; then
    run "$HELM" uninstall "$release" --namespace "$NAMESPACE" --wait --timeout "$HELM_TIMEOUT"
  else
    echo "observability: release $release not installed in $NAMESPACE; nothing to do" >&2
  fi
}

# The adapter first: it serves an APIService backed by the Prometheus that goes next.
uninstall_release prometheus-adapter
uninstall_release kube-prom-stack

if [ "$PURGE" = "1" ]; then
  run "$KUBECTL" delete namespace "$NAMESPACE" --ignore-not-found --wait=true
  crds="$("$KUBECTL" get crd -o name | grep '\.monitoring\.coreos\.com$' || true)"
  if [ -n "$crds" ]; then
    # shellcheck disable=SC2086 # one argument per CRD name
    run "$KUBECTL" delete --ignore-not-found $crds
  fi
else
  echo "observability: left namespace $NAMESPACE and the monitoring.coreos.com CRDs in place (PURGE=1 removes them)" >&2
fi
