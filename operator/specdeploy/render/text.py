"""Manifests as text: a YAML stream (what ``kubectl apply -f -`` reads) or a JSON ``v1/List``.

Rendered dicts may share sub-objects; PyYAML would print those as anchors and aliases (``&id001``), which
kubectl accepts but people cannot read, so aliases are switched off.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import yaml


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(documents: Sequence[dict[str, Any]]) -> str:
    """A YAML stream, one document per object, keys in the order they were built."""
    return yaml.dump_all(documents, Dumper=_NoAliasDumper, sort_keys=False, width=120, explicit_start=True)


def to_json(documents: Sequence[dict[str, Any]]) -> str:
    """One object as itself, several as a ``v1/List`` (as ``kubectl get -o json`` prints them)."""
    if len(documents) == 1:
        body: Any = documents[0]
    else:
        body = {"apiVersion": "v1", "kind": "List", "items": list(documents)}
    return json.dumps(body, indent=2) + "\n"
