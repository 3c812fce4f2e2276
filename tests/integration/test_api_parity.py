"""The real API server and pydantic give the same verdict on the same objects, so nothing the API server stores is an
object the operator cannot parse (before: an image ending in a no-break space passed the CRD, failed pydantic, and
the operator retried it forever).

Every request is a server-side dry run (nothing is stored). The string set and the object walker are the unit
tests' (tests/unit/api/hostile.py, crd_walk.py); here the API server is the judge of the Go side: its
OpenAPI patterns and CEL ``matches()`` (RE2), its CEL rule on extraArgs, and the cross-field CEL rules of the
shared case table. The RE2 stand-in of the unit tests is held to the API server's verdicts too.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from tests.harness.localcluster import LocalCluster
from tests.harness.specs import manifest
from tests.unit.api.cases import INVALID, VALID
from tests.unit.api.crd_walk import (
    Path,
    key_rule_accepts,
    keyed_maps,
    maximal,
    openapi,
    parse_field,
    pattern_leaves,
    rename_key,
    schema_accepts,
    set_at,
)
from tests.unit.api.hostile import ALLOWED_ARGS, HOSTILE_STRINGS, all_reserved_spellings
from tests.unit.api.test_pattern_parity import refused_by_pydantic

from specdeploy.api import SpeculativeDeploymentSpec, SpeculativeDeploymentStatus
from specdeploy.api.constants import GROUP, MAX_MULTI_NODE_NAME_LENGTH, MAX_NAME_LENGTH, PLURAL, VERSION
from specdeploy.api.resource import SpeculativeDeployment, check_name
from specdeploy.api.rules import reserved_flag

pytestmark = pytest.mark.integration

BASE_SPEC: dict[str, Any] = {"target": {"model": "org/target"}, "draft": {"model": "org/draft"}}


class Api:
    """One kept-alive HTTPS connection to the API server, for hundreds of dry-run requests."""

    def __init__(self, cluster: LocalCluster, namespace: str) -> None:
        url = urllib.parse.urlsplit(cluster.server)
        self.conn = http.client.HTTPSConnection(url.hostname or "", url.port, context=cluster.ssl_context(), timeout=30)
        self.base = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"

    def send(self, method: str, path: str, body: Any, content_type: str = "application/json") -> dict[str, Any]:
        data = json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers={"Content-Type": content_type})
        response = self.conn.getresponse()
        answer: dict[str, Any] = json.loads(response.read() or b"{}")
        answer["_code"] = response.status
        return answer

    def dry_create(self, obj: dict[str, Any]) -> dict[str, Any]:
        return self.send("POST", f"{self.base}?dryRun=All&fieldValidation=Strict", obj)

    def dry_status(self, name: str, status: dict[str, Any]) -> dict[str, Any]:
        path = f"{self.base}/{name}/status?dryRun=All"
        return self.send("PATCH", path, {"status": status}, "application/merge-patch+json")


def refused_fields(answer: dict[str, Any]) -> set[Path]:
    """The fields the API server names in a refusal (empty when it accepted)."""
    if answer["_code"] < 300:
        return set()
    assert answer["_code"] == 422, answer
    return {parse_field(cause.get("field", "")) for cause in answer.get("details", {}).get("causes", [])}


def messages(answer: dict[str, Any]) -> str:
    return " ".join(cause.get("message", "") for cause in answer.get("details", {}).get("causes", []))


@pytest.fixture
def api(cluster: LocalCluster, crd: str, namespace: str) -> Iterator[Api]:
    client = Api(cluster, namespace)
    yield client
    client.conn.close()


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 30 else f"{value[:20]!r}...({len(value)} characters)"


def test_every_pattern_leaf_gets_the_same_verdict_from_the_api_server_and_pydantic(
    api: Api, kubectl: Any, namespace: str
) -> None:
    # One object per hostile string with the string in every pattern leaf of spec; the API server lists every
    # field it refuses, so each answer gives the verdict of all ~80 leaves at once. Status leaves go through
    # a dry-run patch of the status subresource of one stored object.
    leaves = list(pattern_leaves(openapi()))
    spec_leaves = [(p, n) for p, n in leaves if p[0] == "spec"]
    status_leaves = [(p, n) for p, n in leaves if p[0] == "status"]
    assert len(spec_leaves) >= 60 and len(status_leaves) >= 5
    stored = manifest("parity", BASE_SPEC)
    assert api.dry_create(stored)["_code"] == 201
    kubectl.apply(stored, "-n", namespace)
    disagreements: list[str] = []
    for name, value in HOSTILE_STRINGS.items():
        for section, section_leaves, model in (
            ("spec", spec_leaves, SpeculativeDeploymentSpec),
            ("status", status_leaves, SpeculativeDeploymentStatus),
        ):
            obj = maximal(openapi()["properties"][section])
            for path, _ in section_leaves:
                set_at(obj, path[1:], value)
            answer = api.dry_create(manifest("parity-dry", obj)) if section == "spec" else api.dry_status("parity", obj)
            paths = {path for path, _ in section_leaves}
            server = refused_fields(answer) & paths
            pydantic = refused_by_pydantic(model, obj, section) & paths
            stand_in = {path for path, node in section_leaves if not schema_accepts(node, value)}
            if not server == pydantic == stand_in:
                disagreements.append(
                    f"{name} ({section}): API server only {sorted(server - pydantic)}, pydantic only "
                    f"{sorted(pydantic - server)}, RE2 stand-in differs on {sorted(stand_in ^ server)}"
                )
    assert disagreements == [], "\n".join(disagreements)


def test_map_keys_and_names_get_the_same_verdict_from_the_cel_rules_and_pydantic(api: Api) -> None:
    maps = list(keyed_maps(openapi()))
    spec_maps = [(p, r) for p, r in maps if p[0] == "spec"]
    assert len(spec_maps) >= 7
    disagreements: list[str] = []
    for name, key in HOSTILE_STRINGS.items():
        obj = maximal(openapi()["properties"]["spec"])
        for path, _ in spec_maps:
            rename_key({"spec": obj}, path, key)
        answer = api.dry_create(manifest("parity-keys", obj))
        paths = {path for path, _ in spec_maps}
        server = refused_fields(answer) & paths
        pydantic = refused_by_pydantic(SpeculativeDeploymentSpec, obj, "spec") & paths
        stand_in = {path for path, rule in spec_maps if not key_rule_accepts(rule, key)}
        if not server == pydantic == stand_in:
            disagreements.append(f"key {name}: API server {sorted(server)}, pydantic {sorted(pydantic)}")
        # metadata.name: the API server's own name rules and the CEL rule against resource.check_name.
        named = manifest("x", BASE_SPEC)
        named["metadata"]["name"] = key
        server_ok = api.dry_create(named)["_code"] == 201
        try:
            check_name(key)
            pydantic_ok = True
        except ValueError:
            pydantic_ok = False
        if server_ok != pydantic_ok:
            disagreements.append(f"name {name}: API server accepts={server_ok}, pydantic accepts={pydantic_ok}")
    assert disagreements == [], "\n".join(disagreements)


def test_a_multi_node_name_gets_the_same_verdict_from_the_cel_rule_and_pydantic(api: Api) -> None:
    disagreements: list[str] = []
    shapes = {
        "one node": {"tensorParallelSize": 8},
        "a group of 2 nodes": {"tensorParallelSize": 8, "pipelineParallelSize": 2},
        "a group of 4-GPU nodes": {"tensorParallelSize": 4, "pipelineParallelSize": 2, "gpusPerNode": 4},
    }
    for shape, target in shapes.items():
        serving = {"gpusPerNode": target.pop("gpusPerNode")} if "gpusPerNode" in target else {}
        spec = {**BASE_SPEC, "target": {**BASE_SPEC["target"], **target}, "serving": serving}
        for length in (29, 30, 31, 43):
            obj = manifest("m" * length, spec)
            answer = api.dry_create(obj)
            try:
                SpeculativeDeployment.model_validate(obj)
                pydantic_ok = True
            except ValueError:
                pydantic_ok = False
            server_ok = answer["_code"] == 201
            wanted = length <= (MAX_NAME_LENGTH if shape == "one node" else MAX_MULTI_NODE_NAME_LENGTH)
            if not server_ok == pydantic_ok == wanted:
                disagreements.append(
                    f"{shape}, name of {length}: server {server_ok}, pydantic {pydantic_ok}, wanted {wanted}"
                )
            if not server_ok and "when one replica spans several nodes" not in str(answer):
                disagreements.append(f"{shape}, name of {length}: refused without the rule's message: {answer}")
    assert disagreements == [], "\n".join(disagreements)


def test_reserved_flags_get_the_same_verdict_and_name_from_the_cel_rule_and_pydantic(api: Api) -> None:
    disagreements: list[str] = []
    cases = [(arg, flag) for arg, flag in all_reserved_spellings()] + [(arg, None) for arg in ALLOWED_ARGS]
    for arg, flag in cases:
        answer = api.dry_create(manifest("flags", {**BASE_SPEC, "serving": {"extraArgs": ["--max-num-seqs", arg]}}))
        server_flag = None
        if answer["_code"] != 201:
            assert refused_fields(answer) == {("spec", "serving", "extraArgs")}, (arg, answer)
            text = messages(answer)
            assert "spec.serving.extraArgs must not set " in text, text
            server_flag = text.split("spec.serving.extraArgs must not set ", 1)[1].split(" (in any spelling)")[0]
        if not server_flag == reserved_flag(arg) == flag:
            disagreements.append(f"{arg!r}: API server names {server_flag}, pydantic {reserved_flag(arg)}, want {flag}")
    assert disagreements == [], "\n".join(disagreements)


def test_the_case_table_gets_the_same_verdict_and_text_from_the_api_server(api: Api) -> None:
    # The refusals the unit tests check in pydantic (cross-field CEL rules included: the draft TP rule of
    # draft_model, mtp without a draft) are refused by the API server too, with the same words.
    disagreements: list[str] = []
    for case in INVALID:
        answer = api.dry_create(manifest("case", case.spec))
        if answer["_code"] != 422 or case.expect not in json.dumps(answer):
            disagreements.append(f"{case.id}: {answer['_code']} {answer.get('message', '')[:300]}")
    for case in VALID:
        answer = api.dry_create(manifest("case", case.spec))
        if answer["_code"] != 201:
            disagreements.append(f"{case.id} (valid): {answer['_code']} {answer.get('message', '')[:300]}")
    assert disagreements == [], "\n".join(disagreements)
