"""The chart installed for real, and the operator proven to run on exactly the RBAC it grants.

`helm install --wait` puts charts/specdeploy into the local control plane (CRD from the chart's crds/). Then the
operator runs as a local process with a token of the chart's ServiceAccount (`kubectl create token`) and
nothing else, through a recording proxy, and reconciles a SpeculativeDeployment with validation Enforce (its
validation Job's pod run by the PodRunner on real tokenizer files) and one with Skip, end to end: revision,
Job, Deployment, Service, status, Events, finalizer on and off. The API server enforces the Role; the proxy
writes down every call, so the test can check both directions: every call was allowed, and every granted verb
was used or is explained in ``MAY_GO_UNSEEN``. `kubectl auth can-i` and a SelfSubjectRulesReview as the
ServiceAccount check what must be denied (Secrets anywhere; everything outside the watched namespaces).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.apirecorder import Call, RecordingProxy
from tests.chart.conftest import CHART, MAY_GO_UNSEEN, OPERATOR_RULES, PEERING_VERBS
from tests.harness import zoo
from tests.harness.kubectl import Kubectl, wait_for
from tests.harness.localcluster import LocalCluster
from tests.harness.operator import OperatorProcess
from tests.harness.podrunner import PodRunner
from tests.harness.specs import condition, manifest, sd_status

pytestmark = [pytest.mark.chart, pytest.mark.integration]

CRD_NAME = "speculativedeployments.specdeploy.io"
FINALIZER = "specdeploy.io/finalizer"
# "forbidden" is in every refusal the API server writes; a bare 403 is a status code in kopf's and urllib3's
# lines (never the milliseconds of a timestamp, ",403]", nor part of an id).
FORBIDDEN = re.compile(r"forbidden|(?<![\w,.:-])403(?!\w)", re.IGNORECASE)
# What the authorizer (RBAC) and the owner-reference admission check say when they refuse: unlike other 403s
# (e.g. writing into a namespace being deleted), these mean the chart grants too little.
RBAC_REFUSAL = re.compile(r'User "[^"]+" cannot [a-z]+ resource|cannot set blockOwnerDeletion|Unauthorized')


def refused_by_rbac(call: Call) -> bool:
    return call.status == 401 or (call.status == 403 and RBAC_REFUSAL.search(call.message) is not None)


Triple = tuple[str, str, str]  # (API group, resource, verb)


# ----------------------------------------------------------------------------------------------- helpers
def triples(rules: dict[tuple[str, str], set[str]]) -> set[Triple]:
    return {(g, r, v) for (g, r), verbs in rules.items() for v in verbs}


def review_triples(review: dict[str, Any]) -> set[Triple]:
    """Flatten a SelfSubjectRulesReview's resourceRules; resourceNames-limited rules are kept apart by a marker."""
    out: set[Triple] = set()
    for rule in review["status"].get("resourceRules", []):
        limited = "[named]" if rule.get("resourceNames") else ""
        for g in rule.get("apiGroups", []):
            for r in rule.get("resources", []):
                for v in rule["verbs"]:
                    out.add((g, r + limited, v))
    return out


@dataclass
class Helm:
    binary: str
    kubeconfig: Path
    home: Path

    def run(self, *args: str, check: bool = True, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        done = subprocess.run(
            [self.binary, *args, "--kubeconfig", str(self.kubeconfig)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr}{done.stdout}")
        return done


@dataclass
class Release:
    """One `helm install` of the chart and the ServiceAccount identity it created."""

    name: str
    namespace: str
    watched: list[str]
    other: str
    service_account: str
    token_kubeconfig: Path
    admin: Kubectl
    sa: Kubectl
    helm: Helm
    crd_preexisting: bool

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def can_i(self, verb: str, resource: str, namespace: str | None, subresource: str = "") -> bool:
        args = ["auth", "can-i", verb, resource]
        args += ["-n", namespace] if namespace else ["--all-namespaces"]
        if subresource:
            args.append(f"--subresource={subresource}")
        done = self.sa.run(*args, check=False)
        answer = done.stdout.strip()
        assert answer in ("yes", "no"), f"kubectl {' '.join(args)}: {done.stderr}{done.stdout}"
        return answer == "yes"

    def rules_in(self, namespace: str, kubectl: Kubectl | None = None) -> set[Triple]:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectRulesReview",
            "spec": {"namespace": namespace},
        }
        done = (kubectl or self.sa).run("create", "--validate=false", "-f", "-", "-o", "json", stdin=json.dumps(review))
        return review_triples(json.loads(done.stdout))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def strip_finalizers_and_delete(admin: Kubectl, namespaces: list[str]) -> None:
    """Leave nothing behind even after a failed test: an object whose operator is gone would block its namespace."""
    for ns in namespaces:
        for obj in admin.items("sd", ns):
            admin.run(
                "patch", "sd", obj["metadata"]["name"], "-n", ns, "--type=merge",
                "-p", '{"metadata":{"finalizers":null}}', check=False,
            )  # fmt: skip
        admin.run("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


@contextlib.contextmanager
def installed(
    cluster: LocalCluster, kubectl: Kubectl, helm_bin: str, home: Path, *, namespaced: bool, sets: tuple[str, ...] = ()
) -> Iterator[Release]:
    prefix = unique("cc")
    release_ns, other = f"{prefix}-system", f"{prefix}-other"
    watched = [f"{prefix}-llm"] if namespaced else []
    name = "sdns" if namespaced else "sdcw"
    helm = Helm(helm_bin, cluster.kubeconfig, home)
    crd_preexisting = kubectl.get("crd", CRD_NAME) is not None
    args = ["install", name, str(CHART), "-n", release_ns, "--create-namespace", "--wait", "--timeout", "90s"]
    if watched:
        args += ["--set", f"watchNamespaces={{{','.join(watched)}}}"]
    for s in sets:
        args += ["--set", s]
    try:
        for ns in (*watched, other):  # the Roles go into the watched namespaces: they exist first
            kubectl.run("create", "namespace", ns)
        helm.run(*args)
        sa_name = f"{name}-specdeploy"
        token = kubectl.run("create", "token", sa_name, "-n", release_ns, "--duration=1h").stdout.strip()
        kc = cluster.token_kubeconfig(token, home / f"{name}-token.kubeconfig", namespace=(watched or ["default"])[0])
        yield Release(
            name=name,
            namespace=release_ns,
            watched=watched,
            other=other,
            service_account=sa_name,
            token_kubeconfig=kc,
            admin=kubectl,
            sa=Kubectl(binary=kubectl.binary, kubeconfig=kc),
            helm=helm,
            crd_preexisting=crd_preexisting,
        )
    finally:
        helm.run("uninstall", name, "-n", release_ns, "--wait", "--timeout", "60s", check=False)
        strip_finalizers_and_delete(kubectl, [*watched, other, release_ns])


@dataclass
class RecordedOperator:
    operator: OperatorProcess
    proxy: RecordingProxy
    exit_code: int | None = None
    calls: list[Call] = field(default_factory=list)
    logs: str = ""


@contextlib.contextmanager
def operator_as(
    cluster: LocalCluster, release: Release, log_dir: Path, namespaces: list[str], extra_args: list[str] | None = None
) -> Iterator[RecordedOperator]:
    """`specdeploy run` with only the release's ServiceAccount token, through the recording proxy."""
    pki = cluster.root / "pki"
    proxy = RecordingProxy(
        upstream=cluster.server, ca_file=pki / "ca.crt", cert_file=pki / "apiserver.crt", key_file=pki / "apiserver.key"
    ).start()
    kc = json.loads(release.token_kubeconfig.read_text())
    kc["clusters"][0]["cluster"]["server"] = proxy.url
    proxied = log_dir / "operator.kubeconfig"
    proxied.write_text(json.dumps(kc))
    proxied.chmod(0o600)
    op = OperatorProcess(kubeconfig=proxied, namespaces=namespaces, log_dir=log_dir, extra_args=extra_args or [])
    rec = RecordedOperator(operator=op, proxy=proxy)
    try:
        # The identity behind the proxy is the ServiceAccount, never the admin certificate.
        whoami = Kubectl(binary=release.admin.binary, kubeconfig=proxied).run("auth", "whoami", "-o", "json").stdout
        assert json.loads(whoami)["status"]["userInfo"]["username"] == release.username
        op.start()
        yield rec
    finally:
        rec.exit_code = op.stop()
        rec.logs = op.logs()
        proxy.stop()
        rec.calls = [c for c in proxy.snapshot() if c.verb != "create" or c.resource != "selfsubjectreviews"]


def sd(name: str, policy: str, target: str, draft: str, k: int = 4) -> dict[str, Any]:
    return manifest(
        name,
        {
            "target": {"model": target, "maxModelLen": 8192},
            "draft": {"model": draft},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": k},
            "validation": {"policy": policy},
            # a change replaces the pods at once (a canary would wait for the monitor's verdict): this run also
            # exercises deleting the old revision's Deployment
            "rollout": {"strategy": "Replace"},
        },
    )


def ready(kubectl: Kubectl, name: str, ns: str, generation: int = 1) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        st = sd_status(kubectl, name, ns)
        ok = st.get("phase") == "Ready" and st.get("observedGeneration") == generation
        return st if ok and condition(st, "Ready").get("status") == "True" else None

    return wait_for(f"{ns}/{name} Ready at generation {generation}", check, timeout=60)


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    return any(r.get("uid") == uid and r.get("controller") for r in obj["metadata"].get("ownerReferences", []))


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def namespaced(
    cluster: LocalCluster, kubectl: Kubectl, helm_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    with installed(cluster, kubectl, helm_bin, tmp_path_factory.mktemp("helm-ns"), namespaced=True) as release:
        yield release


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A Llama 3.1 8B target and a Llama 3.2 1B draft: real configs and Meta's real tokenizer, no weights."""
    root = tmp_path_factory.mktemp("models")
    target = zoo.llama(root / "llama-3.1-8b-instruct", zoo.LLAMA_31_8B_INSTRUCT, eos="<|eot_id|>")
    draft = zoo.llama(root / "llama-3.2-1b-instruct", zoo.LLAMA_32_1B_INSTRUCT, eos="<|eot_id|>")
    return {"target": str(target), "draft": str(draft)}


@dataclass
class Reconciled:
    """Everything observed while the operator ran as the chart's ServiceAccount."""

    run: RecordedOperator
    validator_runs: list[dict[str, Any]]
    live: dict[str, dict[str, Any]]  # name -> the object while it served
    status: dict[str, dict[str, Any]]
    jobs: dict[str, list[dict[str, Any]]]
    deployments: dict[str, dict[str, Any]]
    services: dict[str, dict[str, Any]]
    revisions: dict[str, list[dict[str, Any]]]
    events: dict[str, list[dict[str, Any]]]
    changed_status: dict[str, Any]
    changed_args: list[str]
    calls_during_delete: dict[str, list[Call]]


@pytest.fixture(scope="module")
def reconciled(
    cluster: LocalCluster,
    namespaced: Release,
    models: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Reconciled:
    admin, ns = namespaced.admin, namespaced.watched[0]
    runner = PodRunner(cluster.kubeconfig).start()  # the kubelet stand-in acts as the cluster, not as the operator
    names = {"enforced": "Enforce", "skipped": "Skip"}
    run: RecordedOperator | None = None
    try:
        with operator_as(cluster, namespaced, tmp_path_factory.mktemp("operator-ns"), [ns]) as run:
            for name, policy in names.items():
                admin.apply(sd(name, policy, models["target"], models["draft"]), "-n", ns)
            status = {name: ready(admin, name, ns) for name in names}
            live = {name: admin.get("sd", name, ns) for name in names}
            label = "specdeploy.io/name"
            result = Reconciled(
                run=run,
                validator_runs=list(runner.runs),
                live=live,
                status=status,
                jobs={n: admin.items("jobs", ns, f"{label}={n}") for n in names},
                deployments={n: admin.deployment(n, ns) for n in names},
                services={n: admin.get("service", n, ns) for n in names},
                revisions={n: admin.items("controllerrevisions", ns, f"{label}={n}") for n in names},
                # The Ready Event follows the status write that the wait above saw.
                events=wait_for("the Validated and Ready Events", lambda: events_if(admin, ns, EXPECTED_EVENTS)),
                changed_status={},
                changed_args=[],
                calls_during_delete={},
            )
            # A spec change: a new revision in its own Deployment, the old one deleted (strategy Replace).
            admin.apply(sd("skipped", "Skip", models["target"], models["draft"], k=6), "-n", ns)
            result.changed_status = ready(admin, "skipped", ns, generation=2)
            deployment = admin.deployment("skipped", ns, result.changed_status["revision"]["serving"])
            result.changed_args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            # Deletion: only the operator can take its finalizer off.
            for name in names:
                before = len(run.proxy.snapshot())
                admin.run("delete", "sd", name, "-n", ns, "--wait=true", "--timeout=30s")
                result.calls_during_delete[name] = calls_since(run.proxy, before, finalizer_removal(name))
            return result
    except AssertionError as e:
        raise AssertionError(f"{e}\n{explain(run)}") from None
    finally:
        runner.stop()


def finalizer_removal(name: str) -> Callable[[Call], bool]:
    return lambda c: (c.verb, c.resource, c.name, c.status) == ("patch", "speculativedeployments", name, 200)


def calls_since(proxy: RecordingProxy, start: int, awaited: Callable[[Call], bool], timeout: float = 5) -> list[Call]:
    """The calls recorded from index ``start`` on, once one matches ``awaited`` (or after ``timeout``): the proxy
    records a call when its answer passes through, which may be a moment after kubectl saw the effect."""
    deadline = time.monotonic() + timeout
    calls = proxy.snapshot()[start:]
    while not any(awaited(c) for c in calls) and time.monotonic() < deadline:
        time.sleep(0.05)
        calls = proxy.snapshot()[start:]
    return calls


EXPECTED_EVENTS = {"enforced": {"ValidationSucceeded", "Ready"}, "skipped": {"Ready"}}


def events_if(admin: Kubectl, ns: str, expected: dict[str, set[str]]) -> dict[str, list[dict[str, Any]]] | None:
    """The Events on each SpeculativeDeployment, once each carries at least the expected reasons."""
    mine = [e for e in admin.items("events", ns) if e["involvedObject"].get("kind") == "SpeculativeDeployment"]
    by_name = {n: [e for e in mine if e["involvedObject"].get("name") == n] for n in expected}
    done = all(reasons <= {e["reason"] for e in by_name[n]} for n, reasons in expected.items())
    return by_name if done else None


def explain(run: RecordedOperator | None) -> str:
    """Why a reconcile under the chart's RBAC got stuck: the refused calls and the end of the operator's log."""
    if run is None:
        return "(the operator never started)"
    denied = sorted({(c.verb, c.group, c.resource, c.message) for c in run.proxy.snapshot() if c.status in (401, 403)})
    return f"calls refused: {denied}\noperator log (end):\n{run.operator.logs()[-3000:]}"


# ------------------------------------------------------------------------------------ namespaced install
def test_helm_install_runs_the_operator_with_rbac_only_in_the_watched_namespace(namespaced: Release) -> None:
    admin = namespaced.admin
    listed = json.loads(namespaced.helm.run("list", "-n", namespaced.namespace, "-o", "json").stdout)
    assert [(r["name"], r["status"]) for r in listed] == [(namespaced.name, "deployed")]
    deployment = admin.get("deployment", f"{namespaced.name}-specdeploy", namespaced.namespace)
    assert deployment["status"].get("availableReplicas") == 1  # --wait returned only once it was available
    instance = f"app.kubernetes.io/instance={namespaced.name}"
    roles = admin.run("get", "roles,rolebindings", "-A", "-l", instance, "-o", "json").stdout
    where = sorted({(o["kind"], o["metadata"]["namespace"]) for o in json.loads(roles)["items"]})
    assert where == [("Role", namespaced.watched[0]), ("RoleBinding", namespaced.watched[0])]
    cluster_wide = admin.run("get", "clusterroles,clusterrolebindings", "-l", instance, "-o", "json").stdout
    assert json.loads(cluster_wide)["items"] == []


def test_the_crd_in_the_cluster_is_the_one_the_chart_ships(namespaced: Release) -> None:
    shipped = yaml.safe_load((CHART / "crds" / "specdeploy.io_speculativedeployments.yaml").read_text())
    served = namespaced.admin.get("crd", CRD_NAME)
    assert served["spec"]["versions"] == shipped["spec"]["versions"]
    assert served["spec"]["names"] == {**shipped["spec"]["names"], "listKind": "SpeculativeDeploymentList"}
    assert any(c["type"] == "Established" and c["status"] == "True" for c in served["status"]["conditions"])
    if not namespaced.crd_preexisting:
        full = namespaced.admin.run("get", "crd", CRD_NAME, "-o", "json", "--show-managed-fields").stdout
        managers = {m["manager"] for m in json.loads(full)["metadata"]["managedFields"]}
        assert "helm" in managers, managers


def test_service_account_rules_are_exactly_the_operator_rules_and_only_where_it_watches(
    namespaced: Release, cluster: LocalCluster
) -> None:
    """A SelfSubjectRulesReview as the ServiceAccount, minus what any authenticated user may do (a ServiceAccount
    bound to nothing, as the baseline), must equal the operator's rules in the watched namespace, and be empty
    everywhere else, including the namespace the operator itself runs in."""
    admin = namespaced.admin
    nobody = admin.run("create", "token", "default", "-n", namespaced.other, "--duration=10m").stdout.strip()
    baseline_kc = cluster.token_kubeconfig(nobody, namespaced.token_kubeconfig.with_name("nobody.kubeconfig"))
    baseline = Kubectl(binary=admin.binary, kubeconfig=baseline_kc)
    for ns in (*namespaced.watched, namespaced.other, namespaced.namespace, "default", "kube-system"):
        extra = namespaced.rules_in(ns) - namespaced.rules_in(ns, baseline)
        expected = triples(OPERATOR_RULES) if ns in namespaced.watched else set()
        assert extra == expected, (
            f"in namespace {ns}: granted-but-unexpected {sorted(extra - expected)}, missing {sorted(expected - extra)}"
        )


# (verb, resource, subresource, where) -> what the ServiceAccount must be told; where: watched | other | release | all
NAMESPACED_ACCESS: list[tuple[str, str, str, str, bool]] = [
    # Secrets: never, anywhere (the HF token reaches vLLM through secretKeyRef, resolved by the kubelet).
    *[(v, "secrets", "", w, False) for v in ("get", "list", "watch") for w in ("watched", "other", "release", "all")],
    ("create", "secrets", "", "watched", False),
    # Nothing outside the watched namespace, not even in the operator's own namespace.
    *[
        (v, "speculativedeployments.specdeploy.io", "", w, False)
        for v in ("list", "watch", "patch")
        for w in ("other", "release")
    ],
    *[
        (v, r, "", "other", False)
        for v, r in (("create", "deployments.apps"), ("create", "jobs.batch"), ("list", "pods"), ("create", "events"))
    ],
    ("list", "speculativedeployments.specdeploy.io", "", "all", False),
    # What the operator never does, even where it watches.
    ("delete", "services", "", "watched", False),
    ("update", "speculativedeployments.specdeploy.io", "", "watched", False),
    ("delete", "speculativedeployments.specdeploy.io", "", "watched", False),
    ("create", "pods", "", "watched", False),
    ("create", "pods", "exec", "watched", False),
    ("create", "serviceaccounts", "token", "watched", False),
    ("create", "rolebindings.rbac.authorization.k8s.io", "", "watched", False),
    ("create", "leases.coordination.k8s.io", "", "watched", False),
    ("list", "configmaps", "", "watched", False),
    ("list", "nodes", "", "all", False),
    ("list", "namespaces", "", "all", False),
    ("list", "customresourcedefinitions.apiextensions.k8s.io", "", "all", False),
    # What it does do, in the watched namespace.
    ("watch", "speculativedeployments.specdeploy.io", "", "watched", True),
    ("patch", "speculativedeployments.specdeploy.io", "", "watched", True),
    ("patch", "speculativedeployments.specdeploy.io", "status", "watched", True),
    ("update", "speculativedeployments.specdeploy.io", "finalizers", "watched", True),
    ("create", "deployments.apps", "", "watched", True),
    ("patch", "deployments.apps", "", "watched", True),
    ("create", "services", "", "watched", True),
    ("create", "jobs.batch", "", "watched", True),
    ("delete", "jobs.batch", "", "watched", True),
    ("watch", "pods", "", "watched", True),
    ("patch", "controllerrevisions.apps", "", "watched", True),
    ("create", "events", "", "watched", True),
]


def wrong_answers(release: Release, checks: list[tuple[str, str, str, str | None, bool]]) -> list[str]:
    """Run `kubectl auth can-i` as the ServiceAccount for each (verb, resource, subresource, namespace, expected);
    kubectl processes in parallel, since each spends its time starting up."""

    def one(check: tuple[str, str, str, str | None, bool]) -> str:
        verb, resource, sub, ns, expected = check
        if release.can_i(verb, resource, ns, sub) == expected:
            return ""
        what = f"{verb} {resource}{'/' + sub if sub else ''} in {ns or 'all namespaces'}"
        return f"{what}: expected {'yes' if expected else 'no'}"

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [w for w in pool.map(one, checks) if w]


def test_kubectl_auth_can_i_as_the_service_account(namespaced: Release) -> None:
    where = {"watched": namespaced.watched[0], "other": namespaced.other, "release": namespaced.namespace, "all": None}
    wrong = wrong_answers(namespaced, [(v, r, sub, where[w], yes) for v, r, sub, w, yes in NAMESPACED_ACCESS])
    assert not wrong, "\n".join(wrong)


def test_enforced_object_is_validated_then_served_under_the_chart_rbac(reconciled: Reconciled) -> None:
    st = reconciled.status["enforced"]
    assert condition(st, "Validated")["status"] == "True"
    assert st["validation"]["compatible"] is True and st["validation"]["exitCode"] == 0
    [job] = reconciled.jobs["enforced"]
    assert job["metadata"]["name"] == f"enforced-validate-{st['revision']['current']}"
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"])
    [run] = [r for r in reconciled.validator_runs if r["pod"].startswith(job["metadata"]["name"])]
    assert run["argv"][:2] == ["specdeploy", "validate"] and run["exit"] == 0
    uid = reconciled.live["enforced"]["metadata"]["uid"]
    assert owned_by(job, uid)
    for child in (reconciled.deployments["enforced"], reconciled.services["enforced"]):
        assert owned_by(child, uid), child["metadata"]
    [revision] = reconciled.revisions["enforced"]
    assert owned_by(revision, uid)
    assert st["revision"]["serving"] == st["revision"]["current"]


def test_skipped_object_is_served_without_a_job_and_follows_a_spec_change(reconciled: Reconciled) -> None:
    st = reconciled.status["skipped"]
    assert reconciled.jobs["skipped"] == []
    uid = reconciled.live["skipped"]["metadata"]["uid"]
    assert owned_by(reconciled.deployments["skipped"], uid) and owned_by(reconciled.services["skipped"], uid)
    assert st["readyReplicas"] == 1
    changed = reconciled.changed_status
    assert changed["revision"]["current"] != st["revision"]["current"]
    assert changed["revision"]["serving"] == changed["revision"]["current"]
    config = json.loads(reconciled.changed_args[reconciled.changed_args.index("--speculative-config") + 1])
    assert config["num_speculative_tokens"] == 6


def test_events_are_posted_and_the_finalizer_comes_on_and_off(reconciled: Reconciled) -> None:
    for name in ("enforced", "skipped"):
        assert FINALIZER in reconciled.live[name]["metadata"].get("finalizers", []), name
        for event in reconciled.events[name]:
            assert event["source"]["component"] == "specdeploy", event  # posted by the operator, with its own token
            assert not FORBIDDEN.search(event["message"]), event
        for event in (e for e in reconciled.events[name] if e["reason"] in EXPECTED_EVENTS[name]):
            assert event["type"] == "Normal" and event["message"], event
        # The delete returned once the object was gone: the operator took its finalizer off with a patch.
        removals = [c for c in reconciled.calls_during_delete[name] if finalizer_removal(name)(c)]
        assert removals, reconciled.calls_during_delete[name]
    ready_event = next(e for e in reconciled.events["skipped"] if e["reason"] == "Ready")
    assert ready_event["involvedObject"]["uid"] == reconciled.live["skipped"]["metadata"]["uid"]


def test_the_operator_was_never_forbidden(reconciled: Reconciled) -> None:
    denied = [c for c in reconciled.run.calls if c.status in (401, 403)]
    assert not denied, denied
    assert reconciled.run.calls, "the recording proxy saw no API call"
    bad_lines = [line for line in reconciled.run.logs.splitlines() if FORBIDDEN.search(line)]
    assert not bad_lines, "\n".join(bad_lines[:20])
    assert reconciled.run.exit_code == 0, reconciled.run.logs[-3000:]


def test_every_call_is_granted_and_every_grant_is_used_or_explained(
    reconciled: Reconciled, namespaced: Release
) -> None:
    made = {(c.group, c.resource, c.verb) for c in reconciled.run.calls}
    namespaces = {c.namespace for c in reconciled.run.calls}
    assert namespaces == set(namespaced.watched), namespaces
    granted = triples(OPERATOR_RULES)
    assert made <= granted, f"calls outside the chart's rules: {sorted(made - granted)}"
    unexplained = granted - made - set(MAY_GO_UNSEEN)
    assert not unexplained, f"granted, never used in a full reconcile, and not in MAY_GO_UNSEEN: {sorted(unexplained)}"
    stale = set(MAY_GO_UNSEEN) - granted
    assert not stale, f"MAY_GO_UNSEEN names verbs the chart does not grant: {sorted(stale)}"


def test_uninstall_removes_the_operator_identity_and_its_rights(namespaced: Release) -> None:
    namespaced.helm.run("uninstall", namespaced.name, "-n", namespaced.namespace, "--wait", "--timeout", "60s")
    # The token named a ServiceAccount that no longer exists: the API server stops accepting it (its
    # ServiceAccount cache may lag the deletion by a moment).
    wait_for(
        "the ServiceAccount's token to be refused",
        lambda: "Unauthorized" in namespaced.sa.run("auth", "whoami", check=False).stderr,
        timeout=15,
    )
    instance = f"app.kubernetes.io/instance={namespaced.name}"
    left = namespaced.admin.run("get", "all,roles,rolebindings,serviceaccounts", "-A", "-l", instance, "-o", "name")
    assert left.stdout.strip() == ""
    assert namespaced.admin.get("crd", CRD_NAME) is not None  # Helm never deletes crds/


# ---------------------------------------------------------------------------------- cluster-wide install
PEERING = "specdeploy-chartcheck"
PEERING_CRDS = ("kopfpeerings.kopf.dev", "clusterkopfpeerings.kopf.dev")


@pytest.fixture(scope="module")
def clusterwide(
    cluster: LocalCluster, kubectl: Kubectl, helm_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    """The default, cluster-wide install (one ClusterRole), with kopf peering on."""
    home = tmp_path_factory.mktemp("helm-cw")
    sets = ("operator.peering.enabled=true", f"operator.peering.name={PEERING}")
    try:
        with installed(cluster, kubectl, helm_bin, home, namespaced=False, sets=sets) as release:
            yield release
    finally:
        # Helm keeps these on uninstall on purpose (a hook object; CRDs other kopf operators may share).
        kubectl.run("delete", "clusterkopfpeering", PEERING, "--ignore-not-found", check=False)
        for crd in PEERING_CRDS:
            obj = kubectl.get("crd", crd)
            if obj and (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/instance") == "sdcw":
                kubectl.run("delete", "crd", crd, "--wait=false", check=False)


CLUSTER_RULES = {**OPERATOR_RULES, ("kopf.dev", "clusterkopfpeerings"): PEERING_VERBS}


def test_cluster_wide_install_grants_the_operator_rules_in_every_namespace_and_still_no_secrets(
    clusterwide: Release, cluster: LocalCluster
) -> None:
    admin = clusterwide.admin
    nobody = admin.run("create", "token", "default", "-n", clusterwide.other, "--duration=10m").stdout.strip()
    baseline = Kubectl(
        binary=admin.binary,
        kubeconfig=cluster.token_kubeconfig(nobody, clusterwide.token_kubeconfig.with_name("nobody.kubeconfig")),
    )
    for ns in (clusterwide.other, "default"):
        extra = clusterwide.rules_in(ns) - clusterwide.rules_in(ns, baseline)
        assert extra == triples(CLUSTER_RULES), f"in {ns}: {sorted(extra ^ triples(CLUSTER_RULES))}"
    checks: list[tuple[str, str, str, str | None, bool]] = [
        ("list", "speculativedeployments.specdeploy.io", "", None, True),
        ("watch", "pods", "", None, True),
        ("patch", "clusterkopfpeerings.kopf.dev", "", None, True),
        ("list", "kopfpeerings.kopf.dev", "", clusterwide.other, False),
        *[(v, "secrets", "", ns, False) for v in ("get", "list", "watch") for ns in (None, "default", "kube-system")],
        ("list", "nodes", "", None, False),
        ("list", "namespaces", "", None, False),
        ("delete", "deployments.apps", "", "default", False),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", "", None, False),
    ]
    wrong = wrong_answers(clusterwide, checks)
    assert not wrong, "\n".join(wrong)


def test_cluster_wide_operator_reconciles_any_namespace_and_keeps_its_peering_alive(
    clusterwide: Release, models: dict[str, str], cluster: LocalCluster, tmp_path: Path
) -> None:
    admin, ns = clusterwide.admin, clusterwide.other
    run: RecordedOperator | None = None
    try:
        with operator_as(cluster, clusterwide, tmp_path, [], ["--peering", PEERING]) as run:
            admin.apply(sd("anywhere", "Skip", models["target"], models["draft"]), "-n", ns)
            st = ready(admin, "anywhere", ns)
            assert admin.get("deployment", "anywhere", ns) is not None
            peers = wait_for(
                "a keep-alive in the ClusterKopfPeering",
                lambda: (admin.get("clusterkopfpeering", PEERING) or {}).get("status"),
                timeout=20,
            )
            admin.run("delete", "sd", "anywhere", "-n", ns, "--wait=true", "--timeout=30s")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{explain(run)}") from None
    assert run is not None
    assert st["revision"]["serving"] == st["revision"]["current"]
    assert len(peers) == 1, peers  # this operator's identity, with its priority and lifetime
    # A cluster-wide operator also meets whatever other tests left behind (say, objects in a namespace being
    # deleted, where nothing new may be written: a 403 that is not RBAC's); in its own namespace nothing fails.
    assert not [c for c in run.calls if refused_by_rbac(c)]
    assert not [c for c in run.calls if c.namespace in (ns, None) and c.status in (401, 403)]
    assert not [line for line in run.logs.splitlines() if RBAC_REFUSAL.search(line)]
    made = {(c.group, c.resource, c.verb) for c in run.calls}
    assert made <= triples(CLUSTER_RULES), sorted(made - triples(CLUSTER_RULES))
    # Cluster-wide means cluster-scope list and watch of the objects, not one namespace at a time.
    assert Call("watch", "specdeploy.io", "speculativedeployments", None, None, 200) in run.calls
    assert {v for g, r, v in made if r == "clusterkopfpeerings"} == PEERING_VERBS
    assert run.exit_code == 0
