"""Real vLLM (the CPU build) behind every Ready vLLM pod of the local cluster, and greedy traffic to each server.

Why: kwok runs no containers, so in the e2e tier this harness plays the kubelet for the vLLM pods. For each Ready
pod the operator created, it starts real vLLM on the pod's loopback IP and the container's ``--port`` with exactly
the pod's command line (model ids mapped to the generated tiny models by ``tests.harness.vllm.cpu_argv``), and
stops it when the pod goes away, as a kubelet would on deletion. A traffic thread per ready server sends greedy
completions, so the operator's scrapes of the real ``/metrics`` see speculative decoding at work.

Model ids: the specs of the tier and of the demo name models like a user would (``tiny/target``, ``tiny/copy``);
:func:`model_map` maps them to the generated folders for vLLM, and :func:`offline_hub_cache` lays their metadata out
as a Hugging Face cache, so the validator (run by ``PodRunner`` with ``HF_HUB_OFFLINE=1``) reads them as it would
read a pre-fetched cache in an air-gapped cluster.

Stand-in, said plainly: kwok marks a pod Ready at once, while real vLLM needs a minute to load. Until it answers,
the operator's scrapes fail (connection refused) and its windows hold, which is the behaviour under test anyway.
A pod annotated for the harness kubelet (``tests.harness.kubelet``; a spec sets it with
``serving.podAnnotations``) is different: kwok leaves it Running but not Ready, the fleet marks it Ready when its
vLLM answers (as the readiness probe would), and on deletion keeps its vLLM through the pod's preStop pause before
stopping it and removing the pod, so a Service's endpoints follow real readiness and real draining.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config

from specdeploy.render.names import VLLM_CONTAINER
from tests.harness import kubelet
from tests.harness.fakevllm import SERVER_SELECTOR
from tests.harness.podrunner import expand
from tests.harness.tinymodels import CANDIDATES
from tests.harness.vllm import ServerError, VllmServer, server_from_argv

#: Owner part of the model ids that stand for the generated models (``tiny/target``, ``tiny/copy``, ...).
MODEL_OWNER = "tiny"
#: What a Hugging Face cache keeps of a model here: everything but the weights (the validator reads no weights).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
#: Longest prompt sent, in characters. The tokenizer is byte-level, so this bounds the prompt's tokens too:
#: prompt + completion + 2*(k+1) stays far below the CPU servers' max-model-len (1024), where drafts get cut short.
PROMPT_CHARS = 320


def model_id(name: str) -> str:
    """The id a spec uses for the generated model ``name`` (``target`` or a draft candidate)."""
    return f"{MODEL_OWNER}/{name}"


def model_map(models: Path) -> dict[str, str]:
    """``tiny/<name>`` -> the generated folder, for the target and every draft candidate."""
    return {model_id(name): str(models / name) for name in ("target", *CANDIDATES)}


def offline_hub_cache(models: Mapping[str, str], home: Path) -> Path:
    """Lay out each model's metadata files as a Hugging Face cache under ``home`` (use it as ``HF_HOME``).

    Each id gets ``hub/models--<owner>--<name>/refs/main`` pointing at a snapshot named by a hash of its files, as
    ``huggingface_hub`` writes them; ``snapshot_download(local_files_only=True)`` then finds them offline.
    """
    hub = home / "hub"
    for repo_id, folder in models.items():
        files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.endswith(_WEIGHT_SUFFIXES))
        if not files:
            raise FileNotFoundError(f"{folder} (for {repo_id}) has no metadata files")
        digest = hashlib.sha1(usedforsecurity=False)
        for path in files:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        commit = digest.hexdigest()
        repo = hub / f"models--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copyfile(path, snapshot / path.name)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
    return home


def read_prompts(path: Path) -> list[str]:
    """Prompts for the traffic: one per non-blank line of ``path``, cut to ``PROMPT_CHARS`` characters."""
    prompts = [line.strip()[:PROMPT_CHARS] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not prompts:
        raise ValueError(f"{path}: no prompts (one per non-blank line expected)")
    return prompts


@dataclass
class Traffic:
    """Greedy completions sent to each ready server: ``concurrency`` requests in flight, ``max_tokens`` each."""

    prompts: Sequence[str]
    max_tokens: int = 48
    concurrency: int = 2
    #: Streamed and timed per token (``PodServer.decode_seconds``), as a client measuring speed would send them.
    timed: bool = False


@dataclass
class PodServer:
    """Real vLLM for one pod: where it listens, which draft it was given, and what happened to it."""

    pod: str
    namespace: str
    uid: str
    ip: str
    port: int
    draft: str | None  # the draft model id from the pod's --speculative-config, None without speculation
    server: VllmServer | None  # None when the pod's command line could not be turned into one
    state: str = "starting"  # starting -> ready -> stopped, or failed
    error: str = ""
    created: float = field(default_factory=time.monotonic)
    ready_at: float | None = None
    requests: int = 0
    completion_tokens: int = 0
    # The client's side of speed, with ``Traffic.timed``: first to last token of each request, summed, and the tokens
    # after each request's first (their ratio is the client's time per output token, as vLLM defines its own).
    decode_seconds: float = 0.0
    decode_tokens: int = 0
    #: The same per request, with the wall-clock time it finished: (finished, decode seconds, tokens after the first).
    finished: deque[tuple[float, float, int]] = field(default_factory=lambda: deque(maxlen=100_000))
    counting: threading.Lock = field(default_factory=threading.Lock)  # the traffic threads add up here
    request_errors: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    process_lock: threading.Lock = field(default_factory=threading.Lock)  # start vs stop of the vLLM process
    obj: Any = None  # the pod as read when its server started (the harness kubelet marks it Ready)

    def decode_between(self, start: float, end: float) -> tuple[float, int, int]:
        """(decode seconds, tokens after each request's first, requests) of the timed requests that finished between
        the wall-clock times ``start`` and ``end``: what the client saw of the requests vLLM's request histogram
        counted over that span."""
        with self.counting:
            inside = [(s, n) for at, s, n in self.finished if start < at <= end]
        return sum(s for s, _ in inside), sum(n for _, n in inside), len(inside)

    @property
    def startup_seconds(self) -> float | None:
        return None if self.ready_at is None else self.ready_at - self.created

    def describe(self) -> str:
        started = f"ready after {self.startup_seconds:.0f} s" if self.startup_seconds is not None else self.state
        return (
            f"{self.namespace}/{self.pod} {self.ip}:{self.port} draft={self.draft} {started}, "
            f"{self.requests} requests, {self.completion_tokens} tokens"
            + (f", {len(self.request_errors)} failed (last: {self.request_errors[-1]})" if self.request_errors else "")
        )


def vllm_container(pod: Any) -> Any:
    """The vLLM container of a server pod (by name, falling back to the first)."""
    containers = list(pod.spec.containers or [])
    return next((c for c in containers if c.name == VLLM_CONTAINER), containers[0])


def pod_argv(pod: Any) -> list[str]:
    """The container's command line as the kubelet would run it: ``command`` + ``args``, ``$(VAR)`` expanded."""
    container = vllm_container(pod)
    env = {e.name: e.value for e in container.env or [] if e.value is not None}
    return [expand(arg, env) for arg in (*(container.command or []), *(container.args or []))]


def _flag(argv: Sequence[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def pod_port(argv: Sequence[str]) -> int:
    """The port vLLM listens on: the command line's ``--port`` (vLLM's default, 8000, without one)."""
    return int(_flag(argv, "--port") or 8000)


def pod_draft(argv: Sequence[str]) -> str | None:
    spec_cfg = _flag(argv, "--speculative-config")
    if spec_cfg is None:
        return None
    draft = json.loads(spec_cfg).get("model")
    return str(draft) if draft is not None else None


class VllmFleet:
    """Start real vLLM for every Ready vLLM pod, stop it when the pod goes away, and keep traffic flowing.

    ``failures`` lists servers that could not start or died: callers should fail fast on them (with
    :meth:`check`) rather than wait for a verdict that cannot come.
    """

    def __init__(
        self,
        kubeconfig: Path,
        python: Path,
        models: Mapping[str, str],
        log_dir: Path,
        *,
        traffic: Traffic | None = None,
        namespace: str | None = None,
        interval: float = 0.5,
        startup_timeout_s: float = 600.0,
    ) -> None:
        """``namespace``: only that namespace's pods (pods of other tests on the shared cluster are left alone)."""
        self.api = client.CoreV1Api(config.new_client_from_config(str(kubeconfig)))  # type: ignore[no-untyped-call]
        self.python = python
        self.models = dict(models)
        self.log_dir = log_dir
        self.traffic = traffic
        self.namespace = namespace
        self.interval = interval
        self.startup_timeout_s = startup_timeout_s
        self.servers: dict[str, PodServer] = {}  # live ones, by pod uid
        self.history: list[PodServer] = []  # every server ever started, oldest first
        self.failures: list[str] = []
        self.terminating: set[str] = set()  # uids of harness-kubelet pods in their termination (preStop, stop)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="vllm-fleet", daemon=True)
        self._prompt_counter = itertools.count()

    def start(self) -> VllmFleet:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        with self._lock:
            live = list(self.servers.values())
            self.servers.clear()
        for ps in live:
            self._stop_server(ps)

    # ------------------------------------------------------------------ queries
    def ready(self, namespace: str | None = None) -> list[PodServer]:
        """Live servers that answer requests (of pods in ``namespace``, when given)."""
        with self._lock:
            live = list(self.servers.values())
        return [ps for ps in live if ps.state == "ready" and (namespace is None or ps.namespace == namespace)]

    def serving(self, namespace: str, draft: str) -> PodServer | None:
        """The one ready server of ``namespace``, if it runs ``draft`` (a rollout in progress shows two, or none)."""
        ready = self.ready(namespace)
        return ready[0] if len(ready) == 1 and ready[0].draft == draft else None

    def check(self) -> None:
        """Raise AssertionError with the vLLM log tail if a server failed to start or died."""
        if self.failures:
            raise AssertionError("real vLLM failed:\n" + "\n\n".join(self.failures))

    def summary(self) -> list[str]:
        return [ps.describe() for ps in self.history]

    # ------------------------------------------------------------------ the kubelet part
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.namespace is None:
                    found = self.api.list_pod_for_all_namespaces(label_selector=SERVER_SELECTOR)
                else:
                    found = self.api.list_namespaced_pod(self.namespace, label_selector=SERVER_SELECTOR)
                pods: list[Any] = found.items
            except Exception:  # the API server restarting or not up yet: try again
                self._stop.wait(1)
                continue
            wanted = {}
            for pod in pods:
                ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
                if kubelet.managed(pod):  # the harness plays its kubelet: a server once Running, Ready when it answers
                    if pod.metadata.deletion_timestamp:
                        self._terminate(pod)
                        continue
                    ready = pod.status.phase == "Running"
                if ready and pod.status.pod_ip and not pod.metadata.deletion_timestamp:
                    wanted[pod.metadata.uid] = pod
            with self._lock:
                gone = [
                    self.servers.pop(uid)
                    for uid in list(self.servers)
                    if uid not in wanted and uid not in self.terminating
                ]
            for ps in gone:  # before starting new ones: a new pod may get the IP of one that went away
                self._stop_server(ps)
            for uid, pod in wanted.items():
                if uid not in self.servers:
                    self._start_server(pod)
            self._stop.wait(self.interval)

    def _terminate(self, pod: Any) -> None:
        """A deleted pod whose kubelet the harness plays: its endpoint is already not ready (terminating); keep the
        server through the pod's preStop pause, then stop it (SIGTERM, SIGKILL after the grace period) and remove
        the pod, in the background, as a kubelet does."""
        uid = pod.metadata.uid
        with self._lock:
            if uid in self.terminating:
                return
            self.terminating.add(uid)
            ps = self.servers.get(uid)

        def run() -> None:
            try:
                kubelet.terminate(
                    self.api,
                    pod,
                    lambda grace: self._stop_server(ps, grace) if ps is not None else None,
                    vllm_container(pod),
                )
            except Exception as err:  # the API server answering badly must not kill the fleet
                self.failures.append(f"{pod.metadata.namespace}/{pod.metadata.name}: termination failed: {err}")
            finally:
                with self._lock:
                    self.servers.pop(uid, None)

        threading.Thread(target=run, name=f"terminate-{pod.metadata.name}", daemon=True).start()

    def _start_server(self, pod: Any) -> None:
        argv = pod_argv(pod)
        name, ns = pod.metadata.name, pod.metadata.namespace
        try:
            server = server_from_argv(
                self.python,
                argv,
                self.models,
                host=pod.status.pod_ip,
                port=pod_port(argv),
                log_path=self.log_dir / f"{ns}-{name}.log",
            )
        except (KeyError, ValueError) as err:  # an unmapped model id or an option vLLM does not have
            self.failures.append(f"{ns}/{name}: cannot run the pod's command line: {err}\n{' '.join(argv)}")
            with self._lock:  # remember it, so it is not retried every pass
                self.servers[pod.metadata.uid] = PodServer(
                    name, ns, pod.metadata.uid, pod.status.pod_ip, 0, None, None, state="failed"
                )
            return
        ps = PodServer(name, ns, pod.metadata.uid, pod.status.pod_ip, server.port, pod_draft(argv), server, obj=pod)
        with self._lock:
            self.servers[ps.uid] = ps
            self.history.append(ps)
        threading.Thread(target=self._bring_up, args=(ps,), name=f"vllm-{name}", daemon=True).start()

    def _bring_up(self, ps: PodServer) -> None:
        assert ps.server is not None
        try:
            with ps.process_lock:  # a pod deleted before its server started must not leave a process behind
                if ps.stopping.is_set():
                    return
                ps.server.start()
            ps.server.wait_ready(self.startup_timeout_s)
        except ServerError as err:
            if not ps.stopping.is_set():  # stopped because its pod went away: not a failure
                ps.state, ps.error = "failed", str(err)
                self.failures.append(f"{ps.namespace}/{ps.pod} (draft {ps.draft}): {err}")
            return
        if ps.stopping.is_set():
            return
        ps.ready_at = time.monotonic()
        ps.state = "ready"
        if ps.obj is not None and kubelet.managed(ps.obj):  # the readiness probe passes: the kubelet marks it Ready
            try:
                kubelet.set_ready(self.api, ps.obj, True)
            except Exception as err:  # deleted meanwhile: its termination takes over
                if not ps.stopping.is_set():
                    self.failures.append(f"{ps.namespace}/{ps.pod}: could not mark Ready: {err}")
        if self.traffic is not None:
            for i in range(max(1, self.traffic.concurrency)):
                threading.Thread(
                    target=self._send, args=(ps, self.traffic), name=f"traffic-{ps.pod}-{i}", daemon=True
                ).start()

    def _stop_server(self, ps: PodServer, grace_s: float = 15.0) -> None:
        ps.stopping.set()
        if ps.state != "failed":
            ps.state = "stopped"
        if ps.server is not None:
            with ps.process_lock:
                ps.server.stop(grace_s=grace_s)

    # ------------------------------------------------------------------ traffic
    def _send(self, ps: PodServer, traffic: Traffic) -> None:
        """Greedy completions, one after another, until the server is stopped (timed: in a client process)."""
        assert ps.server is not None
        if traffic.timed:
            self._send_timed(ps, traffic)
            return
        while not ps.stopping.is_set() and not self._stop.is_set():
            prompt = traffic.prompts[next(self._prompt_counter) % len(traffic.prompts)]
            try:
                reply = ps.server.complete(prompt, traffic.max_tokens)
            except ServerError as err:
                if self._request_failed(ps, str(err)):
                    return
                continue
            with ps.counting:
                ps.requests += 1
                ps.completion_tokens += int((reply.get("usage") or {}).get("completion_tokens") or 0)

    def _request_failed(self, ps: PodServer, error: str) -> bool:
        """Note a failed request; True when sending should stop (the pod is stopping, or its server died)."""
        assert ps.server is not None
        if ps.stopping.is_set():
            return True
        ps.request_errors.append(error[:500])
        if not ps.server.running():
            ps.state, ps.error = "failed", error
            self.failures.append(f"{ps.namespace}/{ps.pod} (draft {ps.draft}) died: {error}")
            return True
        ps.stopping.wait(1)
        return False

    def _send_timed(self, ps: PodServer, traffic: Traffic) -> None:
        """The same traffic, streamed and timed by ``tests.harness.timedclient`` in its own process (see there why);
        each request it reports is counted here with the time it finished by its clock."""
        assert ps.server is not None and ps.server.model_id is not None
        argv = [
            sys.executable, "-m", "tests.harness.timedclient", "--host", ps.server.host, "--port", str(ps.server.port),
            "--model", ps.server.model_id, "--max-tokens", str(traffic.max_tokens),
            "--offset", str(next(self._prompt_counter)),
        ]  # fmt: skip
        root = Path(__file__).resolve().parents[2]  # where ``tests`` is a package
        with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root) as client:
            assert client.stdin is not None and client.stdout is not None
            client.stdin.write(json.dumps(list(traffic.prompts)))
            client.stdin.close()
            stop = threading.Thread(target=self._stop_client, args=(ps, client), daemon=True)
            stop.start()
            for line in client.stdout:
                done = json.loads(line)
                if "error" in done:
                    if self._request_failed(ps, str(done["error"])):
                        break
                    continue
                tokens, decode = int(done["tokens"]), float(done["decode"])
                with ps.counting:
                    ps.requests += 1
                    ps.completion_tokens += tokens
                    if tokens > 1:
                        ps.decode_seconds += decode
                        ps.decode_tokens += tokens - 1
                        ps.finished.append((float(done["finished"]), decode, tokens - 1))
            client.terminate()

    def _stop_client(self, ps: PodServer, client: subprocess.Popen[str]) -> None:
        while not ps.stopping.wait(0.5) and not self._stop.is_set() and client.poll() is None:
            pass
        client.terminate()


T = TypeVar("T")


def wait(what: str, fleet: VllmFleet, fn: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
    """Poll ``fn`` until it returns something truthy; fail at once if real vLLM failed, with its log."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        fleet.check()
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}\nvLLM servers:\n"
        + "\n".join(fleet.summary())
    )
