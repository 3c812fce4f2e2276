"""``specdeploy crd``: print the SpeculativeDeployment CustomResourceDefinition built from the API models.

``specdeploy crd > crds/specdeploy.io_speculativedeployments.yaml`` regenerates the committed file; a unit test
fails when the two differ.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "crd",
        help="print the SpeculativeDeployment CRD",
        description="Print the CustomResourceDefinition generated from the API models (kubectl apply -f -).",
    )
    parser.add_argument(
        "-o", "--output", choices=("yaml", "json"), default="yaml", help="output format (default: yaml)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from specdeploy.api.crd import build_crd
    from specdeploy.render.text import to_json, to_yaml

    crd = build_crd()
    sys.stdout.write(to_json([crd]) if args.output == "json" else to_yaml([crd]))
    return 0
