"""Kubernetes objects the lab creates: KWOK stages, GPU nodes, the `nvidia` RuntimeClass,
and the in-cluster faces (Services, placeholder workloads) of the lab's local processes.

Every object carries the label `vllm-stack-e2e.io/lab=<name>` so teardown and sweeps find
exactly what the lab made.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

LAB_LABEL = "vllm-stack-e2e.io/lab"
PROCESS_LABEL = "vllm-stack-e2e.io/local-process"
ENGINE_COMPONENT = "serving-engine"
#: Pods of this manager (the operator's Prometheus) are Ready only once their process answers.
PROBED_MANAGER = "prometheus-operator"
#: The chart's router pods (label environment=router): Ready once the gateway answers /health.
ROUTER_ENVIRONMENT = "router"

# KWOK stage templates. Written for this lab: engine pods (chart label
# app.kubernetes.io/component=serving-engine) start Running but not Ready; the data plane
# marks them Ready once the simulated engine answers /health, like a kubelet probe would.
_NODE_STATUS = """\
{{ $now := Now }}
conditions:
{{ range NodeConditions }}
- type: {{ .type | Quote }}
  status: {{ .status | Quote }}
  reason: {{ .reason | Quote }}
  message: {{ .message | Quote }}
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
{{ end }}
addresses:
- {type: InternalIP, address: {{ NodeIP | Quote }}}
- {type: Hostname, address: {{ NodeName | Quote }}}
daemonEndpoints:
  kubeletEndpoint:
    Port: {{ NodePort }}
allocatable:
{{ YAML .status.allocatable 1 }}
capacity:
{{ YAML .status.capacity 1 }}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
  containerRuntimeVersion: vllm-stack-e2e-lab
  kernelVersion: simulated
  kubeProxyVersion: simulated
  osImage: vllm-stack-e2e lab (simulated GPU node)
phase: Running
"""

_POD_RUNNING = """\
{{ $now := Now }}
conditions:
- {type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "%(ready)s", lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "%(ready)s", lastTransitionTime: {{ $now | Quote }}}
{{ range .spec.readinessGates }}
- {type: {{ .conditionType | Quote }}, status: "%(ready)s", lastTransitionTime: {{ $now | Quote }}}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  imageID: {{ printf "simulated://%%s" .image | Quote }}
  ready: %(ready_bool)s
  started: true
  restartCount: 0
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ with PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) ( or .metadata.name "" ) ( or .metadata.namespace "" ) }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
phase: Running
startTime: {{ $now | Quote }}
"""


def _labels(lab: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    labels = {LAB_LABEL: lab}
    labels.update(extra or {})
    return labels


def stages(lab: str) -> list[Obj]:
    """The KWOK stages: node up, ordinary pods Ready at once; the pods whose process the data plane
    runs and probes — engines, routers, the operator's Prometheus — Running-not-Ready (the data
    plane marks them Ready when their process answers, as their readiness probes would); delete."""
    component = '.metadata.labels."app.kubernetes.io/component"'
    managed_by = '.metadata.labels."app.kubernetes.io/managed-by"'
    environment = '.metadata.labels.environment'
    pending = [
        {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
        {"key": ".status.phase", "operator": "In", "values": ["Pending"]},
    ]

    def stage(name: str, kind: str, match: list[Obj], nxt: Obj) -> Obj:
        return {
            "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage",
            "metadata": {"name": name, "labels": _labels(lab)},
            "spec": {"resourceRef": {"apiGroup": "v1", "kind": kind},
                     "selector": {"matchExpressions": match}, "next": nxt},
        }

    return [
        stage("lab-node-up", "Node",
              [{"key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
                "operator": "NotIn", "values": ["True"]}],
              {"statusTemplate": _NODE_STATUS}),
        stage("lab-pod-ready", "Pod",
              pending + [{"key": component, "operator": "NotIn", "values": [ENGINE_COMPONENT]},
                         {"key": managed_by, "operator": "NotIn", "values": [PROBED_MANAGER]},
                         {"key": environment, "operator": "NotIn", "values": [ROUTER_ENVIRONMENT]}],
              {"statusTemplate": _POD_RUNNING % {"ready": "True", "ready_bool": "true"}}),
        stage("lab-prometheus-pod-running", "Pod",
              pending + [{"key": component, "operator": "NotIn", "values": [ENGINE_COMPONENT]},
                         {"key": managed_by, "operator": "In", "values": [PROBED_MANAGER]}],
              {"statusTemplate": _POD_RUNNING % {"ready": "False", "ready_bool": "false"}}),
        stage("lab-router-pod-running", "Pod",
              pending + [{"key": component, "operator": "NotIn", "values": [ENGINE_COMPONENT]},
                         {"key": environment, "operator": "In", "values": [ROUTER_ENVIRONMENT]}],
              {"statusTemplate": _POD_RUNNING % {"ready": "False", "ready_bool": "false"}}),
        stage("lab-engine-pod-running", "Pod",
              pending + [{"key": component, "operator": "In", "values": [ENGINE_COMPONENT]}],
              {"statusTemplate": _POD_RUNNING % {"ready": "False", "ready_bool": "false"}}),
        # Engine and router pods are the data plane's to end: SIGTERM, their grace period, then
        # it deletes them (lab/dataplane.py), as a kubelet would.
        stage("lab-pod-delete", "Pod",
              [{"key": ".metadata.deletionTimestamp", "operator": "Exists"},
               {"key": component, "operator": "NotIn", "values": [ENGINE_COMPONENT]},
               {"key": environment, "operator": "NotIn", "values": [ROUTER_ENVIRONMENT]}],
              {"delete": True}),
    ]


def gpu_node(lab: str, index: int, gpus: int, cpu: str = "48", memory: str = "384Gi") -> Obj:
    """A simulated GPU node, managed by KWOK."""
    resources = {"cpu": cpu, "memory": memory, "pods": "110", "nvidia.com/gpu": str(gpus)}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": f"{lab}-gpu-{index}",
            "annotations": {"kwok.x-k8s.io/node": "fake"},
            "labels": _labels(lab, {"type": "kwok", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                    "kubernetes.io/hostname": f"{lab}-gpu-{index}",
                                    "nvidia.com/gpu.present": "true",
                                    "nvidia.com/gpu.product": "Simulated-GPU"}),
        },
        "spec": {},
        "status": {"allocatable": dict(resources), "capacity": dict(resources)},
    }


def system_node(lab: str) -> Obj:
    """A CPU node for the faces of local processes (router, Prometheus, KEDA placeholders)."""
    resources = {"cpu": "32", "memory": "128Gi", "pods": "110"}
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": f"{lab}-system-0", "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": _labels(lab, {"type": "kwok", "kubernetes.io/os": "linux",
                                             "kubernetes.io/hostname": f"{lab}-system-0"})},
        "spec": {},
        "status": {"allocatable": dict(resources), "capacity": dict(resources)},
    }


def runtime_class(lab: str) -> Obj:
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": "nvidia", "labels": _labels(lab)}, "handler": "nvidia"}


def namespace(lab: str, name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": _labels(lab)}}


def process_face(lab: str, namespace_: str, name: str, image: str, labels: dict[str, str],
                 ports: list[int]) -> Obj:
    """A one-replica Deployment standing for a local process, so `kubectl get pods` shows it.

    Its pod runs on the lab's system node; the data plane routes port-forward and logs for it
    to the local process."""
    pod_labels = {**labels, PROCESS_LABEL: name, LAB_LABEL: lab}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace_, "labels": {**labels, LAB_LABEL: lab}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {PROCESS_LABEL: name}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": f"{lab}-system-0"},
                    "containers": [{"name": name, "image": image,
                                    "ports": [{"containerPort": p} for p in ports]}],
                },
            },
        },
    }


def service(lab: str, namespace_: str, name: str, ports: list[tuple[str, int, int]],
            selector: dict[str, str] | None = None, external_name: str | None = None,
            labels: dict[str, str] | None = None) -> Obj:
    """A ClusterIP Service (selector) or an ExternalName Service pointing at a loopback address."""
    spec: Obj = {"ports": [{"name": n, "port": p, "targetPort": t, "protocol": "TCP"} for n, p, t in ports]}
    if external_name:
        spec.update({"type": "ExternalName", "externalName": external_name})
    else:
        spec["selector"] = selector or {}
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": namespace_, "labels": _labels(lab, labels)},
            "spec": spec}


# How long a port-forward waits for the pod's side to finish once the client's side has ended,
# before it closes the pod's connection: containerd's CRI port-forward (v2.1.4,
# internal/cri/server/sandbox_portforward_linux.go) gives one second.
PORT_FORWARD_CLOSE_SECONDS = 1


def port_forward(lab: str, namespace_: str, pod: str, forwards: list[tuple[int, str, int]],
                 relay: str | None = None) -> Obj:
    """KWOK PortForward for one pod: pod port -> local address:port.

    With `relay` (socat's path) each connection runs `socat -t 1 STDIO TCP:<address>:<port>`
    instead of KWOK's own tunnel. KWOK 0.8.0's tunnel (pkg/utils/net/tunnel.go) keeps the pod's
    connection open until the pod's side ends, so a client that goes away is never seen by the
    pod; a kubelet's (containerd's) closes it a second after the client's stream ends, so the
    router sees the client leave and a streamed request is aborted on the engine. socat does the
    same: end of its stdin → half-close towards the pod, close after `-t` seconds."""
    def forward(port: int, addr: str, tport: int) -> Obj:
        if relay:
            return {"ports": [port], "command": [relay, "-t", str(PORT_FORWARD_CLOSE_SECONDS), "STDIO",
                                                 f"TCP:{addr}:{tport}"]}
        return {"ports": [port], "target": {"address": addr, "port": tport}}

    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward",
        "metadata": {"name": pod, "namespace": namespace_, "labels": _labels(lab)},
        "spec": {"forwards": [forward(port, addr, tport) for port, addr, tport in forwards]},
    }


def pod_logs(lab: str, namespace_: str, pod: str, container: str, path: str) -> Obj:
    """KWOK Logs for one pod: `kubectl logs` reads this (CRI-format) file."""
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
        "metadata": {"name": pod, "namespace": namespace_, "labels": _labels(lab)},
        "spec": {"logs": [{"containers": [container], "logsFile": path, "follow": True}]},
    }
