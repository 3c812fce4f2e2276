"""``specdeploy compare-drafts``: which draft should I use for this target? Measured on real vLLM, not guessed.

For each candidate the command prints the validator's verdict, then starts vLLM with that draft and measures the
acceptance rate overall and per context length, the mean accepted length, per-position rates and the depth with
the best modelled speedup; then, against a server with speculation off on the same prompts, output tokens per
second and time per output token at each concurrency level, with the measured speedup beside the modelled one;
then a side-by-side table of architecture differences, a short analysis of what explains the spread and where
measurement and model disagree, and (--plot) charts of acceptance against context length and of speedup
against concurrency. Exit status: 0 when every candidate (and speculation off) was measured, 1 when some could not
be (the report says why), 2 on bad arguments or unreadable models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CONTEXT_LENGTHS = "256,1024,4096"
DEFAULT_CONCURRENCY_LEVELS = "1,4,16"
#: Most requests in flight at one level: each is a client thread and a sequence in vLLM's batch.
MAX_CONCURRENCY = 256


def _lengths(value: str) -> tuple[int, ...]:
    try:
        lengths = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--context-lengths {value!r}: expected integers like 256,1024,4096") from None
    if not lengths or any(n < 2 for n in lengths):
        raise argparse.ArgumentTypeError(f"--context-lengths {value!r}: expected integers >= 2")
    return tuple(sorted(set(lengths)))


def _levels(value: str) -> tuple[int, ...]:
    if value.strip().lower() == "none":
        return ()
    try:
        levels = tuple(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--concurrency-levels {value!r}: expected integers like 1,4,16") from None
    if not levels or any(n < 1 or n > MAX_CONCURRENCY for n in levels):
        raise argparse.ArgumentTypeError(
            f"--concurrency-levels {value!r}: expected integers from 1 to {MAX_CONCURRENCY} (or none)"
        )
    return tuple(sorted(set(levels)))


def _model_free(value: str) -> object:
    from specdeploy.compare.run import parse_model_free

    try:
        return parse_model_free(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


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
        default=[],
        metavar="[LABEL=]MODEL",
        help="a draft candidate (folder or repo id), optionally labelled; repeat for each candidate",
    )
    parser.add_argument(
        "--model-free",
        action="append",
        default=[],
        type=_model_free,
        metavar="[LABEL=]METHOD",
        help="a candidate that needs no draft model: ngram, ngram_gpu or suffix (vLLM's defaults for its knobs)",
    )
    parser.add_argument(
        "--concurrency-levels",
        type=_levels,
        default=_levels(DEFAULT_CONCURRENCY_LEVELS),
        help=f"requests in flight for the speed measurement, comma-separated, or none (default "
        f"{DEFAULT_CONCURRENCY_LEVELS}); speculation off is measured too, on the same prompts",
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
    parser.add_argument(
        "--speed-prompts",
        type=_positive,
        help="distinct prompts of the speed measurement (default: --num-prompts); each level sends "
        "max(this, level) requests",
    )
    parser.add_argument(
        "--concurrency", type=_positive, default=4, help="requests in flight while measuring acceptance (default 4)"
    )
    parser.add_argument("--output", choices=("table", "json"), default="table", help="stdout format (default table)")
    parser.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="write a chart of acceptance vs context length and measured speedup vs concurrency",
    )
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

    if not args.draft and not args.model_free:
        print("specdeploy compare-drafts: give at least one --draft or --model-free candidate", file=sys.stderr)
        return 2
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
        concurrency_levels=args.concurrency_levels,
        speed_prompts=args.speed_prompts,
    )
    try:
        comparison = compare(
            args.target,
            [*(parse_draft(d) for d in args.draft), *args.model_free],
            prompts,
            settings=settings,
            launcher=launcher,
            log=log,
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
    unmeasured = any(c.rate is None for c in comparison.candidates) or comparison.baseline_error is not None
    return 1 if unmeasured else 0
