"""What the data plane reads from a pod spec as a kubelet would: ports by number or name, the
listen port of a command line, and the environment with valueFrom/envFrom resolved."""

import base64

import pytest

from vllm_stack_e2e.lab import podspec


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


OBJECTS = {
    ("Secret", "ns", "vllm-secrets"): {"data": {"vllmApiKey": b64("s3cret"), "hf_token_llama3": b64("hf_x")}},
    ("ConfigMap", "ns", "settings"): {"data": {"LOG_LEVEL": "debug", "MODE": "fast"}},
}


def lookup(kind: str, namespace: str, name: str):
    return OBJECTS.get((kind, namespace, name))


def pod(env=None, env_from=None, ports=None, command=None):
    container = {"name": "vllm", "env": env or [], "ports": ports or []}
    if env_from:
        container["envFrom"] = env_from
    if command:
        container["command"] = command
    return {"metadata": {"name": "p-0", "namespace": "ns", "uid": "u1", "labels": {"model": "llama3"},
                         "annotations": {"a": "b"}},
            "spec": {"containers": [container], "nodeName": "gpu-node-0", "serviceAccountName": "sa"},
            "status": {"podIP": "10.244.0.7", "hostIP": "10.0.0.1", "podIPs": [{"ip": "10.244.0.7"}]}}


def test_value_from_field_secret_and_configmap() -> None:
    spec = pod(env=[
        {"name": "PLAIN", "value": "x"},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "MODEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['model']"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "VLLM_API_KEY", "valueFrom": {"secretKeyRef": {"name": "vllm-secrets", "key": "vllmApiKey"}}},
        {"name": "LOG_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "LOG_LEVEL"}}},
        {"name": "URL", "value": "http://$(POD_IP):8000"},
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
    ])
    assert podspec.env(spec, lookup) == {
        "PLAIN": "x", "POD_IP": "10.244.0.7", "POD_NAME": "p-0", "MODEL": "llama3", "NODE": "gpu-node-0",
        "VLLM_API_KEY": "s3cret", "LOG_LEVEL": "debug", "URL": "http://10.244.0.7:8000"}


def test_env_from_with_prefix_and_env_winning() -> None:
    spec = pod(env=[{"name": "CFG_MODE", "value": "slow"}],
               env_from=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"},
                         {"secretRef": {"name": "missing", "optional": True}}])
    assert podspec.env(spec, lookup) == {"CFG_LOG_LEVEL": "debug", "CFG_MODE": "slow"}


@pytest.mark.parametrize("ref", [
    {"secretKeyRef": {"name": "absent", "key": "k"}},
    {"secretKeyRef": {"name": "vllm-secrets", "key": "nope"}},
    {"configMapKeyRef": {"name": "absent", "key": "k"}},
])
def test_a_missing_reference_stops_the_container_unless_optional(ref) -> None:
    with pytest.raises(podspec.EnvError, match="CreateContainerConfigError"):
        podspec.env(pod(env=[{"name": "X", "valueFrom": ref}]), lookup)
    optional = {kind: {**value, "optional": True} for kind, value in ref.items()}
    assert podspec.env(pod(env=[{"name": "X", "valueFrom": optional}]), lookup) == {}


def test_ports_by_number_or_name() -> None:
    spec = pod(ports=[{"name": "container-port", "containerPort": 8000}, {"name": "zmq", "containerPort": 55555}])
    assert podspec.port_number(spec, 8000) == 8000
    assert podspec.port_number(spec, "9000") == 9000
    assert podspec.port_number(spec, "zmq") == 55555
    assert podspec.port_number(spec, "unknown") is None


@pytest.mark.parametrize(("args", "port"), [
    (["vllm", "serve", "m", "--port", "8080"], 8080),
    (["vllm", "serve", "m", "--port=9000"], 9000),
    (["vllm", "serve", "m"], 8000),
])
def test_listen_port_of_a_command_line(args, port) -> None:
    assert podspec.listen_port(args) == port
