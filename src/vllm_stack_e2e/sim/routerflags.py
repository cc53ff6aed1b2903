"""The production-stack router's command line, as far as discovery and routing go: read by the
gateway (which takes the router's flags verbatim) and by the lab's data plane (which does the
router's Kubernetes watch for it and feeds the gateway the pods it would have found).

Defaults are the router's own (`vllm_router/parsers/parser.py`): port 8001, `--k8s-port` 8000,
`--k8s-namespace` default, `--k8s-label-selector` empty (every pod of the namespace), discovery
type pod-ip, `--max-instance-failover-reroute-attempts` 0 (a request whose engine fails before its
response headers is not retried on another engine; docs/termination.md). The router refuses to
start without `--service-discovery` and `--routing-logic`, and without `--session-key` for session
routing; so does the gateway."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

# Routing logics the router offers; the gateway models the first two and falls back to
# roundrobin for the others (saying so in its log).
ROUTING_LOGICS = ("roundrobin", "session", "kvaware", "prefixaware", "disaggregated_prefill",
                  "disaggregated_prefill_orchestrated")
MODELLED_ROUTING = ("roundrobin", "session")
DISCOVERY = ("static", "k8s", "external-only")


@dataclass(frozen=True)
class RouterSettings:
    host: str = "0.0.0.0"
    port: int = 8001
    service_discovery: str = "k8s"
    discovery_type: str = "pod-ip"
    namespace: str = "default"
    label_selector: str = ""
    k8s_port: int = 8000
    routing_logic: str = "roundrobin"
    session_key: str | None = None
    static_backends: tuple[str, ...] = ()
    static_models: tuple[str, ...] = ()
    max_instance_failover_reroute_attempts: int = 0
    ignored: tuple[str, ...] = field(default=(), compare=False)  # flags the gateway has no use for


def parser(prog: str = "vllm-sim gateway") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Router-like gateway in front of simulated engines; "
                                "takes the production-stack router's flags.")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--service-discovery", choices=DISCOVERY)
    p.add_argument("--k8s-service-discovery-type", choices=("pod-ip", "service-name"), default="pod-ip")
    p.add_argument("--k8s-namespace", default="default")
    p.add_argument("--k8s-label-selector", default="")
    p.add_argument("--k8s-port", type=int, default=8000)
    p.add_argument("--routing-logic", choices=ROUTING_LOGICS)
    p.add_argument("--session-key", default=None)
    p.add_argument("--static-backends", default=None, help="engine URLs, comma-separated")
    p.add_argument("--static-models", default=None, help="their models, comma-separated, one per URL")
    p.add_argument("--max-instance-failover-reroute-attempts", type=int, default=0, metavar="N",
                   help="retries on another engine for a request whose engine fails before its response "
                        "headers (default 0: none; then HTTP 500)")
    return p


def _csv(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def parse(argv: Sequence[str]) -> RouterSettings:
    """The router's settings from its arguments; ValueError with the router's own complaint when
    it would refuse to start."""
    args, ignored = parser().parse_known_args(list(argv))
    if args.service_discovery is None:
        raise ValueError("--service-discovery must be provided (static, k8s or external-only)")
    if args.routing_logic is None:
        raise ValueError("--routing-logic must be provided")
    if args.routing_logic == "session" and not args.session_key:
        raise ValueError("Session key must be provided when using session routing logic (--session-key)")
    backends, models = _csv(args.static_backends), _csv(args.static_models)
    if args.service_discovery == "static":
        if not backends:
            raise ValueError("Static backends must be provided when using static service discovery (--static-backends)")
        if len(models) != len(backends):
            raise ValueError(f"--static-models must name one model per backend: {len(backends)} backend(s), "
                             f"{len(models)} model(s)")
    return RouterSettings(host=args.host, port=args.port, service_discovery=args.service_discovery,
                          discovery_type=args.k8s_service_discovery_type, namespace=args.k8s_namespace,
                          label_selector=args.k8s_label_selector, k8s_port=args.k8s_port,
                          routing_logic=args.routing_logic, session_key=args.session_key,
                          static_backends=backends, static_models=models,
                          max_instance_failover_reroute_attempts=args.max_instance_failover_reroute_attempts,
                          ignored=tuple(ignored))
