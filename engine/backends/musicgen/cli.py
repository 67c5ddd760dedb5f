"""`segue models check|pull|list` for musicgen-small (called from engine/models_cli.py).

The weights are CC-BY-NC-4.0: `pull` prints the licence before it downloads anything, and
`check` and `list` repeat it beside the installed folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ...errors import SegueError
from ..neural import hub
from .loading import LICENSE, PULL_FILES, REPO_ID

LICENCE_NOTICE = (f"licence: {REPO_ID} weights are {LICENSE}.\n"
                  "         Generated audio inherits the non-commercial terms; read the model card before use.")


def _count(n: int) -> str:
    return f"{n:,} ({n / 1e6:.1f} M)"


def check(args) -> int:
    """Load strictly on the CPU in fp32 (the serving code path), print the parts, run one short
    generation from a 5-frame prompt, print ok. Errors raise SegueError (exit 1)."""
    import numpy as np

    from ..base import BackendConfig, JobContext
    from .backend import MusicgenBackend
    from .loading import part_sizes

    b = MusicgenBackend(BackendConfig(model=args.model, device="cpu", precision="fp32", extra={"warmup": False}))
    b.load()
    sizes = part_sizes(b.model)
    print(f"model      {b.model_dir}")
    print(LICENCE_NOTICE)
    for part, label in (("text_encoder", "T5 text encoder"), ("audio_encoder", "EnCodec 32 kHz"),
                        ("decoder", "decoder (4 codebooks)"), ("enc_to_dec_proj", "text projection")):
        if part in sizes:
            print(f"  {label:<26} {_count(sizes[part])}")
    print(f"  {'total':<26} {_count(sum(sizes.values()))}")
    y = b._generate(np.zeros(640 * 5, np.float32), (640 * 9) / 32000, "a check", 0, JobContext(), 0.0, 1.0)
    print(f"  generate: {y.shape[-1]} samples at 32 kHz from a 5-frame prompt")
    print("ok")
    return 0


def _weights_file(repo: str, token: str | None) -> str:
    """model.safetensors when the repo has it, else pytorch_model.bin (one weights file, not both)."""
    from huggingface_hub import HfApi

    files = set(HfApi().list_repo_files(repo, token=token))
    for name in ("model.safetensors", "pytorch_model.bin"):
        if name in files:
            return name
    raise SegueError("pull_failed", f"{repo} has neither model.safetensors nor pytorch_model.bin")


def pull(args) -> int:
    """Print the licence, then fetch the official files (one weights file) with the shared hub.pull."""
    cache = Path(args.cache) if args.cache else None
    print(LICENCE_NOTICE, flush=True)
    token = args.token or os.environ.get("HF_TOKEN")
    what = f"{REPO_ID} ({', '.join(PULL_FILES[:2])}, model.safetensors, tokenizer files)"
    print(f"pulling {REPO_ID} ...", flush=True)
    try:
        weights = _weights_file(REPO_ID, token)
    except SegueError:
        raise
    except Exception:          # offline or refused: let hub.pull explain it (it tries the same host)
        weights = "model.safetensors"
    path = hub.pull(REPO_ID, PULL_FILES + [weights], cache_dir=cache, token=token, licence=LICENSE, what=what)
    print(f"  {path}")
    print("done; verify with: segue models check --backend musicgen-small")
    return 0


def list_folders(models_dirs: list[str]) -> int:
    """Print musicgen-small copies in --models-dir folders (the HF cache is listed by models_cli);
    returns how many."""
    found = 0
    for d in models_dirs:
        for cfg in sorted(Path(d).expanduser().glob("*/config.json")):
            try:
                kind = json.loads(cfg.read_text()).get("model_type")
            except (OSError, ValueError):
                continue
            if kind == "musicgen":
                print(f"  {cfg.parent.name:<58} {cfg.parent}  [musicgen-small layout, {LICENSE.split(' ')[0]}]")
                found += 1
    return found
