"""``specdeploy render -f FILE``: print, without a cluster, the objects the operator would create.

The file holds one or more SpeculativeDeployment documents (other kinds are skipped with a note). Defaults
are applied as the API server would, then the same pure renderers the operator calls produce the validation
Job (unless there is none for the spec), the Deployment and the Service. Any invalid document stops the
command with exit status 2 and one line per problem, naming the file, the document and the field.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_INVALID = 2


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "render",
        help="print the Job, Deployment and Service for a SpeculativeDeployment manifest",
        description=(
            "Read SpeculativeDeployment manifests and print the objects the operator would create for them "
            "(no cluster needed). Objects without metadata.uid get no ownerReferences."
        ),
    )
    parser.add_argument("-f", "--filename", required=True, metavar="FILE", help="manifest file, or - for stdin")
    parser.add_argument(
        "-o", "--output", choices=("yaml", "json"), default="yaml", help="output format (default: yaml)"
    )
    parser.set_defaults(func=run)


def _read(filename: str) -> str:
    if filename == "-":
        return sys.stdin.read()
    with open(filename, encoding="utf-8") as handle:
        return handle.read()


def run(args: argparse.Namespace) -> int:
    import yaml
    from pydantic import ValidationError

    from specdeploy.api.constants import KIND
    from specdeploy.api.errors import error_lines
    from specdeploy.render.all import render_all
    from specdeploy.render.text import to_json, to_yaml

    filename: str = args.filename
    shown = "<stdin>" if filename == "-" else filename
    try:
        documents = [doc for doc in yaml.safe_load_all(_read(filename)) if doc is not None]
    except OSError as exc:
        print(f"specdeploy render: cannot read {shown}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_INVALID
    except yaml.YAMLError as exc:
        print(f"specdeploy render: {shown}: not valid YAML: {exc}", file=sys.stderr)
        return EXIT_INVALID

    problems: list[str] = []
    rendered: list[dict[str, Any]] = []
    found = 0
    for index, doc in enumerate(documents, start=1):
        where = f"{shown}: document {index}"
        if not isinstance(doc, dict):
            problems.append(f"{where}: expected a mapping (a Kubernetes object), got {type(doc).__name__}")
            continue
        if doc.get("kind") != KIND:
            print(f"specdeploy render: {where}: skipping kind {doc.get('kind')!r}", file=sys.stderr)
            continue
        found += 1
        name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
        if name:
            where += f" ({name})"
        try:
            rendered.extend(render_all(doc))
        except ValidationError as exc:
            problems.extend(f"{where}: {line}" for line in error_lines(exc))
    if not problems and found == 0:
        problems.append(f"{shown}: no {KIND} document found")
    if problems:
        for line in problems:
            print(f"specdeploy render: {line}", file=sys.stderr)
        return EXIT_INVALID
    sys.stdout.write(to_json(rendered) if args.output == "json" else to_yaml(rendered))
    return 0
