"""``specdeploy compare-drafts``: which draft should I use for this target? Measured on real vLLM, not guessed.

For each candidate the command prints the validator's verdict, then starts vLLM with that draft and measures the
acceptance rate overall and per context length, the mean accepted length, per-position rates and the depth with
the best modelled speedup; then a side-by-side table of architecture differences, a short analysis of what
explains the spread, and (--plot) a chart of acceptance against context length. Exit status: 0 when every
candidate was measured, 1 when some could not be (the report says why), 2 on bad arguments or unreadable models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CONTEXT_LENGTHS = "256,1024,4096"


def _lengths(value: str) -> tuple[int, ...]:
    try:
        lengths = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--context-lengths {value!r}: expected integers like 256,1024,4096") from None
    if not lengths or any(n < 2 for n in lengths):
        raise argparse.ArgumentTypeError(f"--context-lengths {value!r}: expected integers >= 2")
    return tuple(sorted(set(lengths)))


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return number


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "compare-drafts",
        help="measure draft candidates for a target on real vLLM and rank them",
        description=__doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else None,
    )
    parser.add_argument("--target", required=True, help="target model: folder or Hugging Face repo id")
    parser.add_argument(
        "--draft",
        action="append",
        required=True,
        metavar="[LABEL=]MODEL",
        help="a draft candidate (folder or repo id), optionally labelled; repeat for each candidate",
    )
    parser.add_argument("--prompts", type=Path, help="prompt file, one per line (default: built-in prose and code)")
    parser.add_argument(
        "--context-lengths",
        type=_lengths,
        default=_lengths(DEFAULT_CONTEXT_LENGTHS),
        help=f"prompt lengths in tokens, comma-separated (default {DEFAULT_CONTEXT_LENGTHS})",
    )
    parser.add_argument("--num-speculative-tokens", type=_positive, default=4, help="draft depth k (default 4)")
    parser.add_argument("--max-tokens", type=_positive, default=64, help="generated tokens per prompt (default 64)")
    parser.add_argument("--num-prompts", type=_positive, default=8, help="prompts per context length (default 8)")
    parser.add_argument("--concurrency", type=_positive, default=4, help="requests in flight (default 4)")
    parser.add_argument("--output", choices=("table", "json"), default="table", help="stdout format (default table)")
    parser.add_argument("--plot", type=Path, metavar="FILE.png", help="write a chart of acceptance vs context length")
    parser.add_argument("--report-file", type=Path, metavar="FILE.json", help="also write the JSON report here")
    parser.add_argument(
        "--vllm-python",
        help="Python with vLLM installed (default: $SPECDEPLOY_VLLM_PYTHON, else the venv of hack/vllm/install.sh)",
    )
    parser.add_argument(
        "--vllm-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra vLLM server option (repeat; use --vllm-arg=--flag for values starting with -)",
    )
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for vLLM (600)")
    parser.add_argument("--log-dir", type=Path, help="keep each vLLM server's log here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from specdeploy.compare.launch import LaunchError, ProcessLauncher
    from specdeploy.compare.plot import PlotError, write_chart
    from specdeploy.compare.prompts import DEFAULT_PROMPTS, PromptError, read_prompts
    from specdeploy.compare.report import render_table, to_json
    from specdeploy.compare.run import Settings, compare, parse_draft
    from specdeploy.validate.errors import CheckError

    def log(message: str) -> None:
        if not args.quiet:
            print(f"[compare-drafts] {message}", file=sys.stderr, flush=True)

    try:
        prompts = read_prompts(args.prompts) if args.prompts else list(DEFAULT_PROMPTS)
        launcher = ProcessLauncher.default(args.vllm_python, args.vllm_arg, args.log_dir)
    except (PromptError, LaunchError) as err:
        print(f"specdeploy compare-drafts: {err}", file=sys.stderr)
        return 2
    launcher.startup_timeout_s = args.startup_timeout
    log(f"vLLM: {launcher.python}")
    settings = Settings(
        context_lengths=args.context_lengths,
        num_speculative_tokens=args.num_speculative_tokens,
        max_tokens=args.max_tokens,
        num_prompts=args.num_prompts,
        concurrency=args.concurrency,
    )
    try:
        comparison = compare(
            args.target, [parse_draft(d) for d in args.draft], prompts, settings=settings, launcher=launcher, log=log
        )
    except CheckError as err:
        print(f"specdeploy compare-drafts: {err}", file=sys.stderr)
        return 2
    report = json.dumps(to_json(comparison), indent=2)
    if args.output == "json":
        print(report)
    else:
        print(render_table(comparison), end="")
    if args.report_file:
        try:
            args.report_file.write_text(report + "\n", encoding="utf-8")
        except OSError as err:
            print(
                f"specdeploy compare-drafts: --report-file {args.report_file}: {err.strerror or err}", file=sys.stderr
            )
            return 2
    if args.plot:
        try:
            write_chart(comparison, args.plot)
        except PlotError as err:
            print(f"specdeploy compare-drafts: {err}", file=sys.stderr)
            return 2
        log(f"chart written to {args.plot}")
    return 1 if any(c.rate is None for c in comparison.candidates) else 0
