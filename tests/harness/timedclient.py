"""The timed client of the e2e speed test, in a process of its own: streamed greedy completions, one after another,
each reported as a JSON line (when it finished, first-to-last-token seconds, tokens).

Why a process: in the harness's own process the traffic threads share one GIL with the fleet's loop, the test's
kubectl polling and the other servers' traffic, so a thread that should read a chunk the moment it arrives may run
later. A late first chunk followed by a burst shortens the measured decode time: timed that way the control pod
(5 ms per token) came out 5-15% faster than vLLM's own engine timestamps said, while one server timed by a client
with nothing else to do agreed with vLLM's ``request_decode_time_seconds`` to 0.2 ms in 544 (128-token requests).

Run: python -m tests.harness.timedclient --host 127.0.0.2 --port 8000 --model ID --max-tokens 128 --offset 0
     (the prompts as a JSON list on stdin); it stops when its stdout is closed or it is terminated.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from specdeploy.compare.server import ServerError, VllmServer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--max-tokens", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args()
    prompts = json.load(sys.stdin)
    if not isinstance(prompts, list) or not prompts:
        raise SystemExit("stdin must be a JSON list of prompts")
    server = VllmServer(sys.executable, ["--model", args.model], host=args.host, port=args.port)  # never started
    server.model_id = args.model
    n = args.offset
    try:
        while True:
            prompt = prompts[n % len(prompts)]
            n += 1
            try:
                timing = server.complete_timed(prompt, args.max_tokens)
            except ServerError as err:
                print(json.dumps({"error": str(err)[:500]}), flush=True)
                time.sleep(1)
                continue
            done = {
                "finished": time.time(),
                "decode": timing.last_token_s - timing.first_token_s,
                "tokens": timing.output_tokens,
            }
            print(json.dumps(done), flush=True)
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
