"""`segue models check | pull | list`: install and verify neural backend weights.

    segue models check --backend sao-small --model PATH [--text-encoder PATH]
    segue models pull sao-small [--cache DIR]
    segue models list [--models-dir DIR]

`check` loads everything strictly on the CPU (nothing is served) and prints the
parameter count of each part and the dtypes; it exits 1 with the error
otherwise, so scripts can run it after a download. The lead wires
`add_models_parser(subparsers)` into engine/cli.py.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import SegueError

SAO_REPO = "stabilityai/stable-audio-open-small"
T5_REPO = "google-t5/t5-base"
SAO_FILES = ["model_config.json", "model.safetensors"]
T5_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "spiece.model"]
MUSICGEN_REPO = "facebook/musicgen-small"
KNOWN = {"sao-small": SAO_REPO, "musicgen-small": MUSICGEN_REPO}


def add_models_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("models", help="check, download and list model weights")
    sub = p.add_subparsers(dest="models_cmd", required=True)
    c = sub.add_parser("check", help="load a model strictly on the CPU and print its parts")
    c.add_argument("--backend", default="sao-small", choices=sorted(KNOWN))
    c.add_argument("--model", help="model folder, HF cache folder or repo id (default: the HF cache)")
    c.add_argument("--text-encoder", help="t5-base folder (default: beside the model or the HF cache)")
    c.add_argument("--skip-text-encoder", action="store_true", help="check the checkpoint only")
    pl = sub.add_parser("pull", help="download weights with huggingface_hub (uses your HF token)")
    pl.add_argument("name", choices=sorted(KNOWN))
    pl.add_argument("--cache", help="Hugging Face cache folder (default: $HF_HUB_CACHE or ~/.cache/huggingface/hub)")
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


def cmd_check(args) -> int:
    if args.backend == "musicgen-small":
        from .backends.musicgen.cli import check

        return check(args)
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


def cmd_pull(args) -> int:
    if args.name == "musicgen-small":
        from .backends.musicgen.cli import pull

        return pull(args)
    from .backends.sao_small.loading import hf_cache_dir

    cache = Path(args.cache) if args.cache else hf_cache_dir()
    repo = KNOWN[args.name]
    what = (f"{repo} ({', '.join(SAO_FILES)}) and {T5_REPO} ({', '.join(T5_FILES[:3])}, ...) "
            f"into {cache} (or any folder, then pass --model / --text-encoder)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise SegueError("unavailable", "huggingface_hub is not installed: pip install 'segue[neural]'") from e
    token = args.token or os.environ.get("HF_TOKEN")
    try:
        for rid, files in ((repo, SAO_FILES), (T5_REPO, T5_FILES)):
            print(f"pulling {rid} ...", flush=True)
            path = snapshot_download(rid, allow_patterns=files, cache_dir=str(cache), token=token)
            print(f"  {path}")
    except Exception as e:
        name = type(e).__name__
        if "Gated" in name or "401" in str(e) or "403" in str(e):
            raise SegueError("gated", f"{repo} is gated: sign in at https://huggingface.co/{repo}, accept the "
                             "Stability AI Community License, create a read token at "
                             "https://huggingface.co/settings/tokens, then run `hf auth login` or set HF_TOKEN") from e
        if any(s in name for s in ("Connection", "Offline", "LocalEntryNotFound", "Timeout")) or "resolve" in str(e).lower():
            raise SegueError("offline", f"cannot reach huggingface.co ({name}). Fetch {what} on a machine "
                             "with network and copy them here") from e
        raise SegueError("pull_failed", f"{name}: {e}") from e
    print("done; verify with: segue models check --backend sao-small")
    return 0


def cmd_list(args) -> int:
    from .backends.sao_small.loading import CHECKPOINT_NAMES, _snapshot, hf_cache_dir

    found = 0
    cache = hf_cache_dir()
    print(f"Hugging Face cache: {cache}")
    for repo in (SAO_REPO, T5_REPO, "t5-base"):
        folder = cache / ("models--" + repo.replace("/", "--"))
        snap = _snapshot(folder) if folder.is_dir() else None
        if snap is None:
            print(f"  {repo:<40} not installed")
            continue
        files = sorted(p.name for p in snap.iterdir())
        print(f"  {repo:<40} {snap}  [{', '.join(files)}]")
        found += 1
    for d in args.models_dir:
        for cfg in sorted(Path(d).expanduser().glob("*/model_config.json")):
            ck = [n for n in CHECKPOINT_NAMES if (cfg.parent / n).exists()]
            print(f"  {cfg.parent.name:<40} {cfg.parent}  [{', '.join(ck) or 'no checkpoint'}]")
            found += 1
    from .backends.musicgen.cli import list_installed

    found += list_installed(args.models_dir)
    if not found:
        print("nothing installed: run `segue models pull sao-small` (or musicgen-small)")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry for testing: python -m engine.models_cli models check ..."""
    parser = argparse.ArgumentParser(prog="segue")
    add_models_parser(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
