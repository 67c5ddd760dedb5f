"""`segue models check | pull | list`: install and verify neural backend weights.

    segue models check --backend sao-small|sa3-small [--model PATH|REPO|NAME] [--text-encoder PATH]
    segue models pull sao-small|sa3-small-music|sa3-small-sfx [--cache DIR] [--token T]
    segue models list [--models-dir DIR]

The repositories are gated: `pull` explains the licence to accept and the
token to create when the hub refuses, and what to copy where when offline.

`check` loads everything strictly on the CPU (nothing is served) and prints the
parameter count of each part and the dtypes; it exits 1 with the error
otherwise, so scripts can run it after a download. The lead wires
`add_models_parser(subparsers)` into engine/cli.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .errors import SegueError

SAO_REPO = "stabilityai/stable-audio-open-small"
T5_REPO = "google-t5/t5-base"
SAO_FILES = ["model_config.json", "model.safetensors"]
T5_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "spiece.model"]
SA3_FILES = ["model_config.json", "model.safetensors", "t5gemma-b-b-ul2/*"]
SA3_LICENCE = ("Stability AI Community License (its T5Gemma text encoder also falls under the Gemma terms "
               "of use, shown on the same page)")


@dataclass(frozen=True)
class Weights:
    """One installable model: the repos to pull (id, file patterns) and the backend that serves it."""
    backend: str
    repos: tuple[tuple[str, tuple[str, ...]], ...]
    licence: str


KNOWN = {
    "sao-small": Weights("sao-small", ((SAO_REPO, tuple(SAO_FILES)), (T5_REPO, tuple(T5_FILES))),
                         "Stability AI Community License"),
    "sa3-small-music": Weights("sa3-small", (("stabilityai/stable-audio-3-small-music", tuple(SA3_FILES)),),
                               SA3_LICENCE),
    "sa3-small-sfx": Weights("sa3-small", (("stabilityai/stable-audio-3-small-sfx", tuple(SA3_FILES)),), SA3_LICENCE),
    # not gated, but non-commercial: engine/backends/musicgen/cli.py prints the licence before pulling
    "musicgen-small": Weights("musicgen-small", (("facebook/musicgen-small", ()),), "CC-BY-NC-4.0"),
}
BACKENDS = sorted({w.backend for w in KNOWN.values()})


def add_models_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("models", help="check, download and list model weights")
    sub = p.add_subparsers(dest="models_cmd", required=True)
    c = sub.add_parser("check", help="load a model strictly on the CPU and print its parts")
    # `check NAME` mirrors `pull NAME` (a newcomer types `segue models check sao-small` after pulling it)
    c.add_argument("name", nargs="?", metavar="NAME",
                   help=f"a name `pull` takes or a backend ({', '.join(sorted(set(KNOWN) | set(BACKENDS)))}); "
                        "the same as --backend and --model")
    c.add_argument("--backend", choices=BACKENDS, help="the backend that loads it (default: sao-small)")
    c.add_argument("--model", help="model folder, HF cache folder, repo id or a name from `models list` "
                                   "(default: the backend's model in the HF cache)")
    c.add_argument("--text-encoder", help="text encoder folder (default: beside the model or the HF cache)")
    c.add_argument("--skip-text-encoder", action="store_true", help="check the checkpoint only")
    pl = sub.add_parser("pull", help="download weights with huggingface_hub (uses your HF token)")
    pl.add_argument("name", choices=sorted(KNOWN))
    pl.add_argument("--cache", help="Hugging Face cache folder (default: huggingface_hub's, from HF_HUB_CACHE / HF_HOME)")
    pl.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or `hf auth login`)")
    ls = sub.add_parser("list", help="show installed weights")
    ls.add_argument("--models-dir", action="append", default=[], help="also look in this folder (repeatable)")
    p.set_defaults(func=run_models)
    return p


def run_models(args) -> int:
    try:
        return {"check": cmd_check, "pull": cmd_pull, "list": cmd_list}[args.models_cmd](args)
    except SegueError as e:
        print(f"error {e.code}: {e.message}", file=sys.stderr)
        return 1


def _count(n: int) -> str:
    return f"{n:,} ({n / 1e6:.1f} M)"


def _check_target(args) -> str | None:
    """Fold the positional NAME into args.backend / args.model; a problem with them, or None."""
    name = getattr(args, "name", None)
    if name:
        if name in KNOWN:
            backend, model = KNOWN[name].backend, (name if name != KNOWN[name].backend else None)
        elif name in BACKENDS:
            backend, model = name, None
        else:
            return f"{name!r} is not one of {', '.join(sorted(set(KNOWN) | set(BACKENDS)))}"
        if args.backend and args.backend != backend:
            return f"{name} is checked by backend {backend}, not --backend {args.backend}"
        args.backend = backend
        args.model = args.model or model
    args.backend = args.backend or "sao-small"
    return None


def cmd_check(args) -> int:
    problem = _check_target(args)
    if problem:
        print(f"segue models check: error: {problem}", file=sys.stderr)
        return 2
    if args.backend == "musicgen-small":
        from .backends.musicgen.cli import check

        return check(args)
    if args.backend == "sao-small":
        return _check_sao(args)
    return _check_backend(args)


def _check_sao(args) -> int:
    import torch

    from .backends.sao_small.backend import resolve_text_encoder
    from .backends.sao_small.conditioners import load_text_encoder
    from .backends.sao_small.loading import load_model, resolve_model_dir

    folder = resolve_model_dir(args.model)
    model, meta = load_model(folder, torch.float32, torch.float32, "cpu")
    sizes = model.part_sizes()
    print(f"model      {folder}")
    print(f"checkpoint {meta['checkpoint']} (stored {', '.join(meta['stored_dtypes'])}; loaded float32 on cpu)")
    for part, label in (("dit", "DiT"), ("vae", "VAE (weight norm fused)"), ("seconds", "seconds conditioner")):
        print(f"  {label:<26} {_count(sizes[part])}")
    total = sum(sizes.values())
    if not args.skip_text_encoder:
        t5_dir = resolve_text_encoder(args.text_encoder, folder)
        try:
            text = load_text_encoder(str(t5_dir), meta["config"].cond.t5_max_length)
        except Exception as e:
            raise SegueError("text_encoder_missing", f"cannot load the text encoder from {t5_dir}: {e}") from e
        if text.dim != meta["config"].cond.cond_dim:
            raise SegueError("model_invalid", f"text encoder width {text.dim} != {meta['config'].cond.cond_dim}")
        n = sum(p.numel() for p in text.model.parameters())
        text.embed(["a check"])
        print(f"  {'T5 text encoder':<26} {_count(n)}  ({t5_dir}, {next(text.model.parameters()).dtype})")
        total += n
    print(f"  {'total':<26} {_count(total)}")
    print("ok")
    return 0


def _check_backend(args) -> int:
    """Load the backend exactly as `segue serve` would (fp32, CPU, no warm-up) and print its parts."""
    from .backends import BackendConfig, create

    model = KNOWN[args.model].repos[0][0] if args.model in KNOWN else args.model
    b = create(args.backend, BackendConfig(model=model, text_encoder=args.text_encoder, device="cpu",
                                           precision="fp32", extra={"warmup": False, "prefetch": False}))
    b.load()
    info = b.info()
    print(f"model      {info.get('model_dir')}")
    for part, n in (info.get("parameters") or {}).items():
        print(f"  {part:<26} {_count(n)}")
    print(f"  {'total':<26} {_count(sum((info.get('parameters') or {}).values()))}")
    print("ok")
    return 0


def cmd_pull(args) -> int:
    from .backends.neural import hub

    if args.name == "musicgen-small":
        from .backends.musicgen.cli import pull

        return pull(args)
    w = KNOWN[args.name]
    cache = Path(args.cache) if args.cache else None
    token = args.token or os.environ.get("HF_TOKEN")
    what = " and ".join(f"{rid} ({', '.join(files[:3])}{', ...' if len(files) > 3 else ''})" for rid, files in w.repos)
    for rid, files in w.repos:
        print(f"pulling {rid} ...", flush=True)
        path = hub.pull(rid, list(files), cache_dir=cache, token=token, licence=w.licence, what=what)
        print(f"  {path}")
    print(f"done; verify with: segue models check --backend {w.backend}"
          + (f" --model {args.name}" if w.backend != args.name else ""))
    return 0


def cmd_list(args) -> int:
    from .backends.neural import hub
    from .backends.sao_small.loading import CHECKPOINT_NAMES

    found = 0
    print(f"Hugging Face cache: {hub.hub_cache_dir()}")
    seen = set()
    for name, w in KNOWN.items():
        for rid, _files in w.repos:
            if rid in seen:
                continue
            seen.add(rid)
            snap = hub.cached_snapshot(rid)
            label = f"{rid} ({name})" if rid == w.repos[0][0] else rid
            if snap is None:
                print(f"  {label:<58} not installed")
                continue
            files = sorted(p.name for p in snap.iterdir())
            print(f"  {label:<58} {snap}  [{', '.join(files)}]")
            found += 1
    for d in args.models_dir:
        for cfg in sorted(Path(d).expanduser().glob("*/model_config.json")):
            ck = [n for n in CHECKPOINT_NAMES if (cfg.parent / n).exists()]
            print(f"  {cfg.parent.name:<58} {cfg.parent}  [{', '.join(ck) or 'no checkpoint'}]")
            found += 1
    from .backends.musicgen.cli import list_folders

    found += list_folders(args.models_dir)
    if not found:
        print("nothing installed: run `segue models pull sao-small` (or sa3-small-music, sa3-small-sfx, musicgen-small)")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry for testing: python -m segue.engine.models_cli models check ..."""
    parser = argparse.ArgumentParser(prog="segue")
    add_models_parser(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
