"""``specdeploy validate``: arguments, human/JSON output, the termination-message file and exit codes.

Exit 0: compatible; 1: incompatible (a check failed); 2: could not check (network, auth, missing or malformed
files, bad arguments). The JSON report (at most 4096 bytes) also goes to ``--report-file`` on every outcome,
which is how the validation Job hands it to the operator via ``/dev/termination-log``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from specdeploy.validate.methods import METHODS

DESCRIPTION = (
    "Check that a draft model (or speculative head) can serve a target model with vLLM speculative decoding, "
    "from config and tokenizer files only (never weights)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``specdeploy validate`` (shared by the console script and the standalone entry point)."""
    parser.add_argument("--target", required=True, help="target model: Hugging Face repo id or local folder")
    parser.add_argument("--draft", help="draft model or head: repo id or folder (omit for ngram / mtp)")
    parser.add_argument(
        "--method",
        default="draft_model",
        type=_method,
        help=f"speculative method: {', '.join(METHODS)} (default draft_model; *_mtp aliases mean mtp)",
    )
    parser.add_argument("--revision", help="target revision: branch, tag or commit (default main)")
    parser.add_argument("--draft-revision", help="draft revision: branch, tag or commit (default main)")
    parser.add_argument("--tensor-parallel-size", type=_positive_int, default=1, help="target TP (default 1)")
    parser.add_argument(
        "--pipeline-parallel-size", type=_positive_int, default=1, help="target pipeline stages (default 1)"
    )
    parser.add_argument(
        "--gpus-per-node", type=_positive_int, help="GPUs of one node, for multi-node replicas (default 8)"
    )
    parser.add_argument(
        "--draft-tensor-parallel-size", type=_positive_int, help="draft TP (default: vLLM's, the target TP)"
    )
    parser.add_argument("--max-model-len", type=_positive_int, help="serving length (default: the target's)")
    parser.add_argument("--gpu-memory-gib", type=_positive_float, help="memory of one GPU in GiB, e.g. 80")
    parser.add_argument(
        "--gpu-memory-utilization", type=_fraction, default=0.9, help="vLLM's --gpu-memory-utilization (0.9)"
    )
    parser.add_argument(
        "--heterogeneous-vocab",
        action="store_true",
        help="check for vLLM's use_heterogeneous_vocab (draft_model only): a draft with another vocabulary passes "
        "with a warning that reports the tokens both share",
    )
    parser.add_argument("--output", choices=("text", "json"), default="text", help="stdout format (default text)")
    parser.add_argument("--report-file", help="also write the JSON report here (e.g. /dev/termination-log)")
    parser.add_argument("--cache-dir", help="Hugging Face cache folder (default: HF_HUB_CACHE / HF_HOME)")
    parser.add_argument(
        "--timeout", type=_positive_float, default=300.0, help="seconds allowed for fetching metadata (300)"
    )


def run(args: argparse.Namespace) -> int:
    """Validate as the parsed ``args`` say, print, write the report file, and return the exit code."""
    from specdeploy.validate.checks import Options
    from specdeploy.validate.engine import Request, validate
    from specdeploy.validate.errors import redact
    from specdeploy.validate.report import to_json

    request = Request(
        target=args.target,
        draft=args.draft,
        options=Options(
            method=args.method,
            tensor_parallel=args.tensor_parallel_size,
            pipeline_parallel=args.pipeline_parallel_size,
            gpus_per_node=args.gpus_per_node,
            draft_tensor_parallel=args.draft_tensor_parallel_size,
            max_model_len=args.max_model_len,
            gpu_memory_gib=args.gpu_memory_gib,
            gpu_memory_utilization=args.gpu_memory_utilization,
            heterogeneous_vocab=args.heterogeneous_vocab,
        ),
        revision=args.revision,
        draft_revision=args.draft_revision,
        cache_dir=args.cache_dir,
        timeout_s=args.timeout,
    )
    outcome = validate(request)
    text = redact(to_json(outcome.report))
    if args.report_file:
        try:
            with open(args.report_file, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            print(f"warning: cannot write the report to {args.report_file}: {exc}", file=sys.stderr)
    if args.output == "json":
        print(text)
    else:
        print(redact(render_text(outcome.report, outcome.exit_code)))
    return outcome.exit_code


def render_text(report: dict[str, Any], exit_code: int) -> str:
    """The report for a terminal: verdict first, then one line per model and per check."""
    verdict = {0: "COMPATIBLE", 1: "INCOMPATIBLE", 2: "COULD NOT CHECK"}[exit_code]
    lines = [f"{verdict} ({report.get('method')}): {report.get('summary', '')}"]
    for side in ("target", "draft"):
        model = report.get(side)
        if isinstance(model, dict):
            facts = [str(model[k]) for k in ("model_type", "tokenizer") if model.get(k) is not None]
            if model.get("params"):
                facts.insert(1, f"{model['params'] / 1e9:.2f}B params")
            lines.append(f"  {side:<7} {model.get('model')}  {'  '.join(facts)}")
    for check in report.get("checks", []):
        lines.append(f"  {check['status'].upper():<4} {check['name']:<16} {check['message']}")
    error = report.get("error")
    if isinstance(error, dict):
        lines.append(f"  error ({error.get('kind')}): {error.get('message')}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point (``python -m specdeploy.validate``), same options as ``specdeploy validate``."""
    parser = argparse.ArgumentParser(prog="specdeploy validate", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


def _method(value: str) -> str:
    from specdeploy.validate.methods import normalise

    name = normalise(value)
    if name not in METHODS:
        raise argparse.ArgumentTypeError(f"{value!r} is not one of {', '.join(METHODS)}")
    return name


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not (0 < number < float("inf")):
        raise argparse.ArgumentTypeError(f"{value} must be a positive number")
    return number


def _fraction(value: str) -> float:
    number = _positive_float(value)
    if number > 1:
        raise argparse.ArgumentTypeError(f"{value} must be in (0, 1]")
    return number


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
