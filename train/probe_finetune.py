"""Fine-tune MiniLM on the question sets, leave-one-library-out, on a GPU; keep each
fold's LoRA delta and one fitted on every library (the shipped tuning).

Three steps, as the device machine has neither the shared sets nor the project's
dependencies:

    python -m train.probe_finetune export DIR   # here: passage texts, questions, answering
                                                # passages, hard negatives, and the model
                                                # in float16 (never committed)
    python -m train.probe_finetune run DIR OUT  # there: base vs full fine-tuning (2, 4
                                                # epochs) vs the question side only
    python -m train.probe_finetune lora DIR OUT # there: LoRA (2, 4 epochs), each fold's
                                                # delta and the one on all libraries
    python -m train.probe_finetune curve DIR OUT  # there: LoRA on 25% and 50% of the
                                                # questions (the learning curve)
    python -m train.lora_artifact OUT           # here: the artifact and the folds

Training pairs are each in-scope question with its answering passage (the passage
holding one of its phrases), in-batch negatives plus one hard negative each (the nearest
non-answering passage under the base model), as sentence-transformers'
MultipleNegativesRankingLoss does. Each held-out library is scored by dense retrieval of
its answering passages (top-1/3/10/50) with the model fitted on the others.
"""

from __future__ import annotations

import copy
import gzip
import json
import os
import sys
import time
from pathlib import Path


def export(out: Path) -> None:
    import shutil

    import numpy as np
    from safetensors.torch import load_file, save_file

    from bot.index.chunks import chunk_document
    from bot.ingest.documents import library_files, read_document
    from bot.ingest.model import DocumentError
    from train.data import available, load, shared_embedder

    out.mkdir(parents=True, exist_ok=True)
    embedder = shared_embedder()
    libraries = {}
    for name in available():
        s = load(name, embedder)
        snap = s.engine.snapshot()
        texts = []
        for path in library_files(s.engine.settings.seeds_dir):
            try:
                doc = read_document(path)
            except DocumentError:  # skipped by the index too
                continue
            if doc.meta.doc_id in snap.docs:
                texts.extend(chunk_document(doc).texts)
        assert len(texts) == len(snap.passages), (name, len(texts), len(snap.passages))
        hard = []
        sims = s.vectors @ s.passages.T
        for i, rows in enumerate(s.positives):
            order = np.argsort(-sims[i])
            hard.append(int(next(r for r in order if r not in rows)))
        libraries[name] = {
            "passages": texts, "questions": [q["question"] for q in s.questions],
            "positives": s.positives, "hard": hard,
        }  # fmt: skip
    with gzip.open(out / "data.json.gz", "wt") as f:
        json.dump(libraries, f)
    model = Path(embedder.model_path)
    (out / "model").mkdir(exist_ok=True)
    for item in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):  # fmt: skip
        shutil.copy(model / item, out / "model" / item)
    weights = {k: v.half() for k, v in load_file(str(model / "model.safetensors")).items()}
    save_file(weights, str(out / "model" / "model.safetensors"))


DEVICE = os.environ.get("PROBE_DEVICE", "cuda")
#: Variants fine-tuned per fold: epochs, and whether passages stay with the base model
#: (only the question side learns: the index would stay as it is).
VARIANTS = {"full-2ep": (2, False), "full-4ep": (4, False), "questions-only-2ep": (2, True)}


def _encode(model, tok, texts, batch=512):  # type: ignore[no-untyped-def]
    """Unit vectors of many texts, in batches (callers hold ``torch.no_grad``)."""
    import torch

    return torch.cat([_encode_train(model, tok, texts[i : i + batch])
                      for i in range(0, len(texts), batch)])  # fmt: skip


def _recall(model, tok, lib, passages=None) -> dict[str, int]:  # type: ignore[no-untyped-def]
    import torch

    if not lib["questions"]:
        return {}
    model.eval()
    with torch.no_grad():
        p = passages if passages is not None else _encode(model, tok, lib["passages"])
        q = _encode(model, tok, lib["questions"])
        order = torch.argsort(q @ p.T, dim=1, descending=True).cpu().numpy()
    ranks = []
    for i, rows in enumerate(lib["positives"]):
        hit = [j for j, r in enumerate(order[i][:1000]) if r in set(rows)]
        ranks.append(hit[0] if hit else 10**6)
    return {f"top{k}": sum(r < k for r in ranks) for k in (1, 3, 10, 50)}


def _train(base, tok, libs, epochs=2, questions_only=False, lr=2e-5, model=None):  # type: ignore[no-untyped-def]  # noqa: E501
    """Fine-tune a copy of `base` (or `model`, a LoRA-wrapped copy) on the libraries'
    (question, answering passage, hard negative) triples, in-batch negatives."""
    import random

    import torch

    batch, scale = 64, 20.0
    model = model if model is not None else copy.deepcopy(base).float()
    model.train()
    frozen = base.eval()
    pairs = [(q, lib["passages"][rows[0]], lib["passages"][hard])
             for lib in libs for q, rows, hard in
             zip(lib["questions"], lib["positives"], lib["hard"], strict=True)]  # fmt: skip
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    rng = random.Random(0)
    for _ in range(epochs):
        rng.shuffle(pairs)
        for i in range(0, len(pairs), batch):
            qs, ps, hs = zip(*pairs[i : i + batch], strict=True)
            model.train()
            q = _encode_train(model, tok, list(qs))
            if questions_only:
                with torch.no_grad():
                    d = _encode_train(frozen, tok, list(ps) + list(hs))
            else:
                d = _encode_train(model, tok, list(ps) + list(hs))
            logits = scale * q @ d.T
            labels = torch.arange(len(qs), device=DEVICE)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def _encode_train(model, tok, texts, max_len=256):  # type: ignore[no-untyped-def]
    """Unit vectors of one batch, mean-pooled as sentence-transformers' MiniLM does."""
    import torch

    enc = tok(texts, padding=True, truncation=True, max_length=max_len,
              return_tensors="pt").to(DEVICE)  # fmt: skip
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden.float() * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _libraries(folder: Path) -> dict[str, dict[str, list]]:  # type: ignore[type-arg]
    with gzip.open(folder / "data.json.gz", "rt") as f:
        libs = json.load(f)
    limit = int(os.environ.get("PROBE_LIMIT", "0"))
    if limit:  # a smoke test: a few questions and passages of each library
        for lib in libs.values():
            keep = [i for i, rows in enumerate(lib["positives"]) if max(rows) < limit][:limit]
            for key in ("questions", "positives", "hard"):
                lib[key] = [lib[key][i] for i in keep]
            lib["passages"] = lib["passages"][:limit]
            lib["hard"] = [min(h, limit - 1) for h in lib["hard"]]
    return libs


def _base(folder: Path):  # type: ignore[no-untyped-def]
    """The exported model and its tokenizer, on the device."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder / "model")
    return tok, AutoModel.from_pretrained(folder / "model").float().to(DEVICE)


def run(folder: Path, out: Path) -> None:
    started = time.time()
    libs = _libraries(folder)
    tok, base = _base(folder)
    results: dict[str, dict[str, object]] = {}
    for name, lib in libs.items():
        others = [v for k, v in libs.items() if k != name]
        import torch

        with torch.no_grad():
            base_passages = _encode(base.eval(), tok, lib["passages"])
        results[name] = {"n": len(lib["questions"]), "base": _recall(base, tok, lib, base_passages)}
        for variant, (epochs, questions_only) in VARIANTS.items():
            tuned = _train(base, tok, others, epochs, questions_only)
            kept = base_passages if questions_only else None
            results[name][variant] = _recall(tuned, tok, lib, kept)
            del tuned
        print(name, results[name], f"{time.time() - started:.0f}s", flush=True)
    (out / "probe.json").write_text(json.dumps(results, indent=1))


#: LoRA variants: epochs (rank 16, alpha 32, lr 2e-4 on every linear layer: peft's usual
#: settings, not tuned here).
LORA_EPOCHS = (2, 4)


def _lora(base, tok, libs, epochs):  # type: ignore[no-untyped-def]
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                        target_modules=["query", "key", "value", "dense"])  # fmt: skip
    model = get_peft_model(copy.deepcopy(base).float(), config)
    return _train(base, tok, libs, epochs, lr=2e-4, model=model)


def _deltas(model, prefix):  # type: ignore[no-untyped-def]
    """Each adapted weight's low-rank delta (B * scaling, A), as float16, by the base
    parameter's name: W' = W + B @ A."""
    out = {}
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {}):
            key = name.removeprefix("base_model.model.") + ".weight"
            a = module.lora_A["default"].weight.detach().float().cpu().numpy()
            b = module.lora_B["default"].weight.detach().float().cpu().numpy()
            out[f"{prefix}/{key}:A"] = a.astype("float16")
            out[f"{prefix}/{key}:B"] = (b * module.scaling["default"]).astype("float16")
    return out


def run_lora(folder: Path, out: Path) -> None:
    """LoRA under LOLO (each fold's delta kept), then on every library."""
    import numpy as np

    started = time.time()
    libs = _libraries(folder)
    tok, base = _base(folder)
    results: dict[str, dict[str, object]] = {}
    deltas: dict[int, dict[str, object]] = {e: {} for e in LORA_EPOCHS}
    for name, lib in [*libs.items(), ("all", None)]:
        others = [v for k, v in libs.items() if k != name]
        for epochs in LORA_EPOCHS:
            tuned = _lora(base, tok, others, epochs)
            deltas[epochs].update(_deltas(tuned, name))
            if lib is not None:
                results.setdefault(name, {})[f"lora-{epochs}ep"] = _recall(tuned, tok, lib)
            del tuned
        print(name, results.get(name), f"{time.time() - started:.0f}s", flush=True)
    for epochs, arrays in deltas.items():
        np.savez_compressed(out / f"lora-{epochs}ep.npz", **arrays)
    (out / "lora.json").write_text(json.dumps(results, indent=1))


#: Shares of each training library's questions for the learning curve (LoRA, 2 epochs).
CURVE = (0.25, 0.5)


def _share(lib: dict[str, list], share: float, seed: int = 0) -> dict[str, list]:  # type: ignore[type-arg]
    """The library with a random `share` of its questions (its passages all kept)."""
    import random

    n = len(lib["questions"])
    keep = sorted(random.Random(seed).sample(range(n), min(n, max(1, round(share * n)))))
    return {**lib, **{k: [lib[k][i] for i in keep] for k in ("questions", "positives", "hard")}}


def run_curve(folder: Path, out: Path) -> None:
    """The learning curve: LoRA (2 epochs) fitted on a share of the other libraries'
    questions, each library scored as it was held out."""
    started = time.time()
    libs = _libraries(folder)
    tok, base = _base(folder)
    results: dict[str, dict[str, object]] = {}
    for name, lib in libs.items():
        for share in CURVE:
            others = [_share(v, share) for k, v in libs.items() if k != name]
            tuned = _lora(base, tok, others, 2)
            results.setdefault(name, {})[f"lora-2ep-{share:.0%}"] = _recall(tuned, tok, lib)
            del tuned
        print(name, results[name], f"{time.time() - started:.0f}s", flush=True)
    (out / "curve.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    verb, where = sys.argv[1], Path(sys.argv[2])
    target = Path(sys.argv[3]) if len(sys.argv) > 3 else where
    if verb == "export":
        export(where)
    elif verb == "lora":
        run_lora(where, target)
    elif verb == "curve":
        run_curve(where, target)
    else:
        run(where, target)
