"""Tiny target and draft models, generated and trained on the CPU in a few minutes, cached under a version key.

Why: the e2e tier and ``specdeploy compare-drafts`` need real vLLM serving a real target with drafts whose quality
differs in known ways, and the tests must not download models. Random weights give acceptance rates near zero for
anything but an exact copy, so the target (Llama, 4 layers, hidden 256) is trained briefly on a synthetic corpus
with learnable structure (a small grammar, counting, echoed word lists, records repeated later in a document).
Draft candidates, all with the target's byte-level BPE tokenizer:

* ``copy``: the target's own weights (acceptance 1);
* ``same-family-large``: the target's first 3 of 4 layers with its embeddings, final norm and LM head (an
  early-exit draft, as in self-speculative decoding);
* ``same-family-small``: the same from the first 2 layers;
* ``other-family``: a GPT-NeoX model (another architecture, its own initialisation, hidden 192) trained briefly on
  other text (grammar sentences only): it knows the tokens but not the target's habits.

A brief distillation of the truncated drafts was tried and dropped: with the few steps affordable here it pulled
them towards the corpus and away from the target's own greedy choices (lower agreement, not higher). The manifest
records each candidate's offline agreement with the target's greedy continuations of held-out prompts, and an
estimate of the k=4 acceptance rate from them, so a wrong ordering shows up before vLLM is started.

Run with the vLLM venv's Python (it needs torch and transformers), from the repository root:
``python -m tests.harness.tinymodels [--out DIR]``. Without ``--out`` the models go to
``${SPECDEPLOY_CACHE:-~/.cache/specdeploy}/tinymodels/<key>/``; a finished folder holds ``manifest.json`` and is
reused. Prints the folder on the last line of stdout. Everything is seeded: the same versions give the same models.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

#: Bump when the corpus, the shapes or the training change: it is part of the cache key.
GENERATOR_VERSION = 3
CANDIDATES = ("copy", "same-family-large", "same-family-small", "other-family")
EXPECTED_ORDER = CANDIDATES  # best first
MANIFEST = "manifest.json"
PROMPTS = "prompts.txt"

SEED = 1234
VOCAB_SIZE = 640
MAX_POSITIONS = 1024
TRAIN_SEQ = 256
TRAIN_BATCH = 8
TARGET_STEPS = 300
SMALL_LAYERS = 2
LARGE_LAYERS = 3
ESTIMATE_K = 4
OTHER_STEPS = 40

# --- the synthetic corpus -------------------------------------------------------------------------------------------

# Word lists of the synthetic grammar (space-separated for readability).
_NOUNS = "cat dog bird fox horse mouse owl river tree house garden city road boat train star moon cloud".split()  # noqa: SIM905
_ADJS = "red small old quick lazy bright dark green quiet happy tall cold warm".split()  # noqa: SIM905
_VERBS = "sees finds likes follows watches chases visits paints reaches helps".split()  # noqa: SIM905
_PREPS = "near under over behind beside across".split()  # noqa: SIM905
_GREEK = "alpha beta gamma delta omega sigma kappa zeta".split()  # noqa: SIM905
_WORDS = [*_NOUNS, *_ADJS, *_VERBS, *_GREEK]
_NAMES = "alice bob carol dave erin frank grace heidi ivan judy mallory niaj olivia peggy rupert sybil".split()  # noqa: SIM905


def _noun_phrase(rng: random.Random) -> str:
    det = rng.choice(["the", "a", "the", "every"])
    if rng.random() < 0.6:
        return f"{det} {rng.choice(_ADJS)} {rng.choice(_NOUNS)}"
    return f"{det} {rng.choice(_NOUNS)}"


def _sentence(rng: random.Random) -> str:
    out = f"{_noun_phrase(rng)} {rng.choice(_VERBS)} {_noun_phrase(rng)}"
    if rng.random() < 0.5:
        out += f" {rng.choice(_PREPS)} {_noun_phrase(rng)}"
    return out + " ."


def _counting(rng: random.Random) -> str:
    start, step = rng.randint(0, 90), rng.choice([1, 1, 2, 3, 5, 10])
    return "count " + " ".join(str(start + i * step) for i in range(rng.randint(6, 14))) + " ."


def _copying(rng: random.Random) -> str:
    words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(5, 12)))
    return f"echo {words} => {words} ."


def _record(rng: random.Random) -> str:
    name = rng.choice(_NAMES)
    age = rng.randint(18, 90)
    town = rng.choice(_NOUNS)
    return f"name {name} age {age} town {town} ; again name {name} age {age} town {town} ."


def document(rng: random.Random) -> str:
    """One document: a mix of line kinds, where earlier sentences come back (rewarding attention to the context)."""
    lines: list[str] = []
    for _ in range(rng.randint(6, 16)):
        kind = rng.random()
        if kind < 0.2:
            lines.append(_sentence(rng))
        elif kind < 0.35:
            lines.append(_counting(rng))
        elif kind < 0.65:
            lines.append(_copying(rng))
        elif kind < 0.85:
            lines.append(_record(rng))
        elif lines:
            lines.append(rng.choice(lines))  # a repeat of an earlier line
        else:
            lines.append(_sentence(rng))
    return "\n".join(lines)


def sentences(seed: int, count: int) -> list[str]:
    """Documents of grammar sentences only (the other family's training text)."""
    rng = random.Random(seed)
    return ["\n".join(_sentence(rng) for _ in range(rng.randint(6, 16))) for _ in range(count)]


def corpus(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [document(rng) for _ in range(count)]


# --- tokenizer --------------------------------------------------------------------------------------------------------


def train_tokenizer(texts: Sequence[str], out: Path) -> Any:
    """A byte-level BPE tokenizer with <s>, </s> and <pad>, saved as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=["<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", model_max_length=MAX_POSITIONS
    )
    fast.save_pretrained(out)
    return fast


# --- models -----------------------------------------------------------------------------------------------------------


def _llama_config(vocab: int, layers: int, tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=256,
        intermediate_size=688,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=MAX_POSITIONS,
        rope_theta=10000.0,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )


def _neox_config(vocab: int, tokenizer: Any) -> Any:
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(
        vocab_size=vocab,
        hidden_size=192,
        intermediate_size=768,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=MAX_POSITIONS,
        rotary_pct=0.25,
        use_parallel_residual=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )


def _batches(ids: Sequence[int], seed: int) -> Iterator[Any]:
    """Endless random windows of TRAIN_SEQ + 1 tokens from the token stream, TRAIN_BATCH at a time."""
    import torch

    data = torch.tensor(ids, dtype=torch.long)
    gen = torch.Generator().manual_seed(seed)
    while True:
        starts = torch.randint(0, len(data) - TRAIN_SEQ - 1, (TRAIN_BATCH,), generator=gen)
        yield torch.stack([data[s : s + TRAIN_SEQ + 1] for s in starts.tolist()])


def _schedule(step: int, steps: int, peak: float) -> float:
    warm = max(1, steps // 10)
    if step < warm:
        return peak * (step + 1) / warm
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def train(model: Any, ids: Sequence[int], steps: int, *, seed: int, peak_lr: float, log: Any = None) -> list[float]:
    """Next-token training with AdamW and a warm-up + cosine schedule; returns the loss every 10 steps."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    torch.manual_seed(seed)
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=0.01, betas=(0.9, 0.95))
    losses: list[float] = []
    batches = _batches(ids, seed)
    for step in range(steps):
        for group in optim.param_groups:
            group["lr"] = _schedule(step, steps, peak_lr)
        batch = next(batches)
        inputs, labels = batch[:, :-1], batch[:, 1:]
        logits = model(input_ids=inputs).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1))
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        if step % 10 == 0 or step == steps - 1:
            losses.append(round(float(loss.detach()), 4))
        if log is not None and (step + 1) % 50 == 0:
            log(f"  step {step + 1}/{steps}: loss {float(loss.detach()):.3f}")
    model.eval()
    return losses


def truncated_llama(target: Any, layers: int, tokenizer: Any) -> Any:
    """A Llama with the target's first ``layers`` layers, its embeddings, final norm and LM head."""
    from transformers import LlamaForCausalLM

    draft = LlamaForCausalLM(_llama_config(target.config.vocab_size, layers, tokenizer))
    keep = {
        k: v
        for k, v in target.state_dict().items()
        if not k.startswith("model.layers.") or int(k.split(".")[2]) < layers
    }
    missing, unexpected = draft.load_state_dict(keep, strict=False)
    missing = [k for k in missing if "rotary_emb" not in k]
    if missing or unexpected:
        raise RuntimeError(f"truncating the target to {layers} layers: missing {missing}, unexpected {unexpected}")
    return draft


def continuations(target: Any, prompts: Sequence[Sequence[int]], new_tokens: int = 48) -> list[tuple[int, Any]]:
    """(prompt length, prompt + the target's greedy continuation) for each prompt."""
    import torch

    out = []
    with torch.no_grad():
        for prompt in prompts:
            ids = torch.tensor([list(prompt)], dtype=torch.long)
            out.append((len(prompt), target.generate(ids, max_new_tokens=new_tokens, do_sample=False)))
    return out


def offline_estimate(target: Any, draft: Any, sequences: Sequence[tuple[int, Any]]) -> dict[str, float]:
    """How often the draft's greedy token equals the target's along the target's own continuations, and the
    acceptance rate that gives when drafting ``ESTIMATE_K`` tokens per step (accepted up to the first miss)."""
    import torch

    agree = total = accepted = drafted = 0
    with torch.no_grad():
        for start, seq in sequences:
            a = target(input_ids=seq).logits.argmax(-1)[0, start - 1 : -1]
            b = draft(input_ids=seq).logits.argmax(-1)[0, start - 1 : -1]
            match = (a == b).tolist()
            agree += sum(match)
            total += len(match)
            i = 0
            while i + ESTIMATE_K <= len(match):
                run = 0
                while run < ESTIMATE_K and match[i + run]:
                    run += 1
                accepted += run
                drafted += ESTIMATE_K
                i += run + 1
    return {"greedy_agreement": round(agree / total, 4), f"acceptance_k{ESTIMATE_K}": round(accepted / drafted, 4)}


def _save(model: Any, tokenizer: Any, out: Path) -> None:
    from transformers import GenerationConfig

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
    ).save_pretrained(out)


def _encode_stream(tokenizer: Any, texts: Sequence[str]) -> list[int]:
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text)["input_ids"])  # <s> + text
        ids.append(tokenizer.eos_token_id)
    return ids


# --- cache ------------------------------------------------------------------------------------------------------------


def cache_key() -> str:
    import tokenizers
    import torch
    import transformers

    torch_version = torch.__version__.split("+")[0]
    versions = f"torch-{torch_version}_transformers-{transformers.__version__}_tokenizers-{tokenizers.__version__}"
    return f"v{GENERATOR_VERSION}_{versions}"


def default_root() -> Path:
    cache = os.environ.get("SPECDEPLOY_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "specdeploy"
    )
    return Path(cache) / "tinymodels" / cache_key()


def is_complete(root: Path) -> bool:
    manifest = root / MANIFEST
    if not manifest.is_file():
        return False
    data = json.loads(manifest.read_text())
    return data.get("generator_version") == GENERATOR_VERSION and all(
        (root / name / "config.json").is_file() for name in ("target", *CANDIDATES)
    )


def generate(root: Path, *, log: Any = print) -> dict[str, Any]:
    """Build every model into ``root`` (atomically: a temporary folder renamed at the end) and return the manifest."""
    import torch
    from transformers import GPTNeoXForCausalLM, LlamaForCausalLM

    started = time.monotonic()
    torch.manual_seed(SEED)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    work = root.with_name(root.name + f".tmp-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    train_texts = corpus(SEED, 3000)
    other_texts = sentences(SEED + 1, 600)
    held_out = corpus(SEED + 2, 60)
    tokenizer = train_tokenizer(train_texts, work / "tokenizer")
    vocab = len(tokenizer)
    train_ids = _encode_stream(tokenizer, train_texts)
    other_ids = _encode_stream(tokenizer, other_texts)
    log(f"tokenizer: {vocab} tokens; corpus {len(train_ids)} tokens")

    timings: dict[str, float] = {}
    losses: dict[str, list[float]] = {}
    t0 = time.monotonic()
    target = LlamaForCausalLM(_llama_config(vocab, 4, tokenizer))
    losses["target"] = train(target, train_ids, TARGET_STEPS, seed=SEED, peak_lr=3e-3, log=log)
    timings["target"] = time.monotonic() - t0
    first, last = losses["target"][0], losses["target"][-1]
    log(f"target: {TARGET_STEPS} steps in {timings['target']:.0f} s, loss {first} -> {last}")
    _save(target, tokenizer, work / "target")
    _save(target, tokenizer, work / "copy")

    drafts: dict[str, Any] = {"copy": target}
    for name, layers in (("same-family-large", LARGE_LAYERS), ("same-family-small", SMALL_LAYERS)):
        draft = truncated_llama(target, layers, tokenizer).eval()
        _save(draft, tokenizer, work / name)
        drafts[name] = draft
        log(f"{name}: the target's first {layers} of 4 layers, its embeddings, norm and head")

    t0 = time.monotonic()
    torch.manual_seed(SEED + 99)
    other = GPTNeoXForCausalLM(_neox_config(vocab, tokenizer))
    losses["other-family"] = train(other, other_ids, OTHER_STEPS, seed=SEED + 99, peak_lr=3e-3)
    timings["other-family"] = time.monotonic() - t0
    _save(other, tokenizer, work / "other-family")
    drafts["other-family"] = other
    log(f"other-family: GPT-NeoX, {OTHER_STEPS} steps on grammar sentences in {timings['other-family']:.0f} s")

    prompts = [tokenizer(doc.replace("\n", " "))["input_ids"][:64] for doc in held_out[:8]]
    sequences = continuations(target, prompts)
    estimates = {name: offline_estimate(target, model, sequences) for name, model in drafts.items()}
    log(f"offline estimates against the target's greedy continuations: {estimates}")
    shutil.rmtree(work / "tokenizer")
    _write_prompts(work / PROMPTS, held_out)

    manifest: dict[str, Any] = {
        "generator_version": GENERATOR_VERSION,
        "key": root.name,
        "vocab_size": vocab,
        "candidates": list(CANDIDATES),
        "expected_order": list(EXPECTED_ORDER),
        "offline_estimates": estimates,
        "train_losses": losses,
        "seconds": {k: round(v, 1) for k, v in timings.items()},
        "total_seconds": round(time.monotonic() - started, 1),
        "torch": torch.__version__,
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    if root.exists():
        shutil.rmtree(root)
    work.rename(root)
    return manifest


def _write_prompts(path: Path, docs: Sequence[str]) -> None:
    """One prompt per line: held-out documents (lines joined), unseen in training but from the same generators."""
    path.write_text("".join(doc.replace("\n", " ") + "\n" for doc in docs[:24]))


def ensure(root: Path | None = None, *, log: Any = print) -> Path:
    """The folder of generated models, generating them first if the cache has none. Safe across processes."""
    import fcntl

    root = root or default_root()
    if is_complete(root):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not is_complete(root):
            generate(root, log=log)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.harness.tinymodels", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help="folder for the models (default: the cache folder for this key)")
    parser.add_argument("--force", action="store_true", help="regenerate even if the folder is complete")
    args = parser.parse_args(argv)
    root = args.out or default_root()

    def log(message: str) -> None:
        print(f"[tinymodels] {message}", file=sys.stderr, flush=True)

    if args.force and root.exists():
        shutil.rmtree(root)
    try:
        root = ensure(root, log=log)
    except ImportError as err:
        print(
            f"[tinymodels] needs torch, transformers and tokenizers (run with the vLLM venv's python): {err}",
            file=sys.stderr,
        )
        return 2
    print(root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
