"""``specdeploy run``: start the operator (kopf) against the current kubeconfig or the in-cluster config.

The flags mirror ``kopf run`` where they overlap, so kopf users find what they expect, plus the operator's own
metrics port and the admin's policy (``specdeploy.policy``: allow-lists of images, ServiceAccounts, PriorityClasses
and Prometheus URLs, reserved environment names, ``--trust-remote-code``). Settings that keep a long-running
operator healthy (watch and request timeouts, no CRD scanning) are applied in ``specdeploy.handlers``' startup
handler, not here.
"""

from __future__ import annotations

import argparse
import os

from specdeploy.policy import ANY, AdminPolicy, url_problem

#: kopf's own default.
DEFAULT_PEERING_LIFETIME = 60
#: kopf renews a replica's record 5-10 s before its lifetime runs out; below this a live replica could look dead.
MIN_PEERING_LIFETIME = 15


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the operator",
        description="Run the specdeploy operator: reconcile SpeculativeDeployments into vLLM pods.",
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeat for several; glob patterns as in kopf)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (cluster-wide)")
    peer = p.add_mutually_exclusive_group()
    peer.add_argument(
        "--standalone", action="store_true", default=True, help="do not coordinate with other operator replicas"
    )
    peer.add_argument(
        "--peering",
        metavar="NAME",
        help="coordinate with other replicas through this kopf peering object (only the highest priority acts)",
    )
    p.add_argument("--priority", type=int, default=0, help="peering priority of this replica (default 0)")
    p.add_argument(
        "--peering-lifetime",
        type=_lifetime,
        default=os.environ.get("SPECDEPLOY_PEERING_LIFETIME", str(DEFAULT_PEERING_LIFETIME)),  # argparse applies type
        metavar="SECONDS",
        help="with --peering: how long a silent replica still counts as alive, i.e. how long the others wait "
        f"after it crashes before they take over (default {DEFAULT_PEERING_LIFETIME}, at least {MIN_PEERING_LIFETIME})",
    )
    p.add_argument(
        "--liveness",
        metavar="URL",
        default=os.environ.get("SPECDEPLOY_LIVENESS", "http://0.0.0.0:8080/healthz"),
        help="liveness endpoint to serve (default http://0.0.0.0:8080/healthz; 'none' disables)",
    )
    p.add_argument(
        "--metrics-port",
        type=int,
        default=os.environ.get("SPECDEPLOY_METRICS_PORT", "9090"),
        help="port of the operator's own Prometheus /metrics (0 disables; default 9090)",
    )
    p.add_argument("--metrics-address", default="0.0.0.0", help="bind address of the metrics port")  # noqa: S104
    p.add_argument(
        "--leaderworkerset",
        action="store_true",
        help="serve multi-node specs (TP x PP above spec.serving.gpusPerNode) as LeaderWorkerSets: needs the LWS "
        "controller and its CRD, and RBAC on leaderworkersets; without it such a spec is refused "
        "(reason LeaderWorkerSetDisabled)",
    )
    _policy_flags(p)
    p.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
    p.add_argument("-v", "--verbose", action="store_true", help="verbose logging")
    p.add_argument("--debug", action="store_true", help="debug logging (never includes secret values)")
    p.set_defaults(func=_run)


def _policy_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "admin policy",
        "What a SpeculativeDeployment may ask for. Each list flag takes comma-separated items and may be repeated; "
        "not given means '*' (anything), given empty (--allowed-images=) means nothing. A spec that breaks the "
        "policy is refused: condition Ready=False reason PolicyViolation, one Warning Event, no child changed.",
    )
    g.add_argument(
        "--allowed-images",
        action="append",
        metavar="GLOBS",
        help="images the vLLM pods and validation Jobs may run (spec.serving.image, spec.validation.image), as "
        "glob patterns, e.g. 'vllm/vllm-openai:*,registry.example.com/llm/*'. The operator's own validator image "
        "(SPECDEPLOY_VALIDATOR_IMAGE) is always allowed",
    )
    g.add_argument(
        "--allowed-service-accounts",
        action="append",
        metavar="GLOBS",
        help="ServiceAccounts spec.serving.serviceAccountName may name (not setting it is always allowed)",
    )
    g.add_argument(
        "--allowed-priority-classes",
        action="append",
        metavar="GLOBS",
        help="PriorityClasses spec.serving.priorityClassName may name (not setting it is always allowed)",
    )
    g.add_argument(
        "--allowed-prometheus-urls",
        action="append",
        type=_url_list,
        metavar="URLS",
        help="Prometheus base URLs spec.metrics.prometheus.url may be (or be below), e.g. "
        "'http://prometheus.monitoring:9090'; never with userinfo, query or fragment",
    )
    g.add_argument(
        "--reserved-env",
        action="append",
        metavar="NAMES",
        help="environment variable names a spec may not set, besides the built-in list (HF_ENDPOINT, proxies, "
        "LD_PRELOAD, PYTHONPATH, ...: specdeploy.policy.RESERVED_ENV)",
    )
    g.add_argument(
        "--allow-trust-remote-code",
        action="store_true",
        help="let spec.serving.extraArgs pass --trust-remote-code (Python from the model repository runs in the pod)",
    )


def _items(given: list[str] | None) -> tuple[str, ...]:
    """A repeated comma-separated flag as one tuple; not given at all means anything."""
    if given is None:
        return (ANY,)
    return tuple(item.strip() for text in given for item in text.split(",") if item.strip())


def _url_list(text: str) -> str:
    for url in (u.strip() for u in text.split(",")):
        if url and url != ANY and url_problem(url) is not None:
            raise argparse.ArgumentTypeError(f"Prometheus URL {url!r} {url_problem(url)}")
    return text


def admin_policy(args: argparse.Namespace) -> AdminPolicy:
    """The policy the flags describe."""
    reserved = _items(args.reserved_env) if args.reserved_env is not None else ()
    return AdminPolicy(
        images=_items(args.allowed_images),
        service_accounts=_items(args.allowed_service_accounts),
        priority_classes=_items(args.allowed_priority_classes),
        prometheus_urls=_items(args.allowed_prometheus_urls),
        allow_trust_remote_code=bool(args.allow_trust_remote_code),
        reserved_env=reserved,
    )


def _lifetime(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value < MIN_PEERING_LIFETIME:
        # kopf renews the record 5-10 s before it expires: a shorter lifetime would let a live replica look dead.
        raise argparse.ArgumentTypeError(f"{value} s is under the minimum {MIN_PEERING_LIFETIME} s")
    return value


def _run(args: argparse.Namespace) -> int:
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    import kopf

    from specdeploy import handlers, kube  # handlers registers itself with kopf's default registry
    from specdeploy.monitor import exporter

    kube.prepare_process()  # before kopf (or the exporter) starts a thread

    if not args.namespace and not args.all_namespaces:
        raise SystemExit("specdeploy run: give --namespace NS (repeatable) or --all-namespaces")
    kopf.configure(verbose=args.verbose, debug=args.debug)
    if args.metrics_port:
        exporter.start_exporter(args.metrics_port, args.metrics_address)
    handlers.configure_runtime(peering_lifetime=args.peering_lifetime)
    policy = admin_policy(args)
    handlers.configure_policy(policy)
    if args.leaderworkerset:
        handlers.enable_leaderworkerset()
        handlers.log.info("LeaderWorkerSet support on: multi-node specs become LeaderWorkerSets")
    handlers.log.info(f"admin policy: {policy.describe()}")
    kopf.run(
        standalone=args.peering is None,
        peering_name=args.peering,
        priority=args.priority,
        liveness_endpoint=None if args.liveness == "none" else args.liveness,
        clusterwide=args.all_namespaces,
        namespaces=args.namespace,
    )
    return 0
