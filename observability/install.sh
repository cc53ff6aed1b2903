#!/usr/bin/env bash
# Step 1 of "Autoscaling with KEDA": the standalone observability stack in namespace monitoring —
# kube-prometheus-stack (Prometheus operator, Prometheus, Grafana) scraping the vLLM engine and
# router Services, and prometheus-adapter in front of that Prometheus.
#
# Written for vllm-stack-e2e: chart versions are pinned (upstream's script takes whatever is
# newest), every command is printed before it runs, and running it twice changes nothing.
#
# Environment:
#   HELM, KUBECTL                  binaries to use (default: helm, kubectl on PATH)
#   KUBE_PROM_STACK_VERSION        kube-prometheus-stack chart version (default below)
#   PROMETHEUS_ADAPTER_VERSION     prometheus-adapter chart version (default below)
#   HELM_TIMEOUT                   how long helm --wait may take per release (default 10m)
#   KUBECONFIG / HELM_KUBECONTEXT  which cluster, as helm and kubectl read them
set -euo pipefail

# kube-prometheus-stack 82.4.3 ships Prometheus v3.10.0, so the engines' metrics are stored as
# vllm:… (Prometheus 2.x negotiates the escaped vllm_… names); 82.4.3 + prometheus-adapter 5.3.0
# is the pair vllm/vllm-stack 0.1.12 itself declares as its optional subcharts.
KUBE_PROM_STACK_VERSION="${KUBE_PROM_STACK_VERSION:-82.4.3}"
PROMETHEUS_ADAPTER_VERSION="${PROMETHEUS_ADAPTER_VERSION:-5.3.0}"
HELM="${HELM:-helm}"
KUBECTL="${KUBECTL:-kubectl}"
HELM_TIMEOUT="${HELM_TIMEOUT:-10m}"

NAMESPACE="monitoring"
REPO_NAME="prometheus-community"
REPO_URL="https://prometheus-community.github.io/helm-charts"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

run() {
  printf '+ %s\n' "$*" >&2
  "$@"
}

echo "observability: kube-prometheus-stack ${KUBE_PROM_STACK_VERSION}, prometheus-adapter ${PROMETHEUS_ADAPTER_VERSION} in namespace ${NAMESPACE}" >&2

# --force-update makes re-adding an existing repo a no-op instead of an error.
run "$HELM" repo add "$REPO_NAME" "$REPO_URL" --force-update
run "$HELM" repo update "$REPO_NAME"

run "$HELM" upgrade --install kube-prom-stack "$REPO_NAME/kube-prometheus-stack" \
  --version "$KUBE_PROM_STACK_VERSION" \
  --namespace "$NAMESPACE" --create-namespace \
  --values "$SCRIPT_DIR/kube-prom-stack.yaml" \
  --wait --timeout "$HELM_TIMEOUT"

run "$HELM" upgrade --install prometheus-adapter "$REPO_NAME/prometheus-adapter" \
  --version "$PROMETHEUS_ADAPTER_VERSION" \
  --namespace "$NAMESPACE" --create-namespace \
  --values "$SCRIPT_DIR/prom-adapter.yaml" \
  --wait --timeout "$HELM_TIMEOUT"

# What the tutorial queries: the operator's Service prometheus-operated on 9090.
run "$KUBECTL" --namespace "$NAMESPACE" get service prometheus-operated
version="$("$KUBECTL" --namespace "$NAMESPACE" get prometheus \
  -o jsonpath='{range .items[*]}{.spec.version}{" "}{end}' 2>/dev/null || true)"
echo "observability: ready; Prometheus version: ${version:-unknown}" >&2
