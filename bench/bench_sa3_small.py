"""sa3-small speed and memory, side by side with the official path (stable-audio-tools 0.0.20).

Same full-size random weights for both (SA3 small in the official key layout, 459.1M DiT +
108.2M SAME-S, built once into bench/out/sa3 (gitignored) by our exporter) and a T5Gemma
stand-in at full size (768 wide, 12 layers, 12 heads, GeGLU 2048; byte-level vocabulary);
a 30 s drum loop at 44.1 kHz, 120 BPM.

Ours: `segue serve --backend sa3-small` and the `segue` client, end to end over OSC
(client process start included):
  - 1-beat transient edit (0.5 s at 120 BPM) at 10.0 s: first request on the file, re-rolls
    of the same region (median), a new region in the same file right away (16.0 s), and a new
    region after the engine was idle for --idle seconds (22.0 s; the idle prefetch encodes
    the rest of the file meanwhile);
  - 4-bar continuation at 120 BPM (8 s) from the end of the loop;
  - the same edit with `--option window=official` (a second engine), to compare the policies;
  - resident memory: after load, and the peak after the requests (status detail).
Official, same run, in its own process (0.0.20 shares 0.0.19's import name):
`generate_diffusion_cond_inpaint` on the same weights, fp32, 8 ping-pong steps, the same
requests: inpaint seconds_total 30 with the mask on 10.0-10.5 s; continuation seconds_total 38
with the mask from 30 s (the official canvas: duration + 6 s).

    PYTHONPATH=. python bench/bench_sa3_small.py [--precision auto] [--repeats 3] [--idle 20]
        [--sat-target .venv/sat-0.0.20] [--skip-reference]
    PYTHONPATH=. python bench/bench_sa3_small.py --profile [auto|fp32|bf16]   # stage times, in process
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from segue_cli import SEGUE, free_port, loadavg, status_detail, timed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

WORK = Path(os.environ.get("SA3_BENCH_DIR", str(ROOT / "bench" / "out" / "sa3")))
SR = 44100


# ---------------------------------------------------------------- fixtures (built once)

def full_t5gemma(folder: Path) -> None:
    """A random T5GemmaEncoderModel at google/t5gemma-b-b-ul2's encoder size with a byte-level vocabulary."""
    import torch
    from transformers import AutoTokenizer, T5GemmaConfig, T5GemmaEncoderModel, T5GemmaModuleConfig

    from tests.sa3.fixtures import make_t5gemma_folder

    make_t5gemma_folder(folder)                              # the tokenizer (and a tiny model we replace)
    vocab = len(AutoTokenizer.from_pretrained(str(folder), local_files_only=True))
    module = dict(vocab_size=vocab, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                  num_attention_heads=12, num_key_value_heads=12, head_dim=64, max_position_embeddings=512,
                  sliding_window=4096, query_pre_attn_scalar=64)
    cfg = T5GemmaConfig(encoder=T5GemmaModuleConfig(**module), decoder=T5GemmaModuleConfig(**module),
                        vocab_size=vocab)
    cfg.is_encoder_decoder = False
    torch.manual_seed(0)
    T5GemmaEncoderModel(cfg).save_pretrained(str(folder))


def stale(model: Path) -> bool:
    """True when the folder's checkpoint does not have the key shapes today's model code expects."""
    if not (model / "model.safetensors").exists():
        return True
    import torch
    from safetensors import safe_open

    from segue.engine.backends.sa3_small.config import Sa3Config
    from segue.engine.backends.sa3_small.loading import official_shapes
    from segue.engine.backends.sa3_small.model import SA3Model

    with torch.device("meta"):
        want = official_shapes(SA3Model(Sa3Config.from_file(model / "model_config.json")))
    with safe_open(str(model / "model.safetensors"), framework="pt") as f:
        have = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    return have != {k: tuple(v) for k, v in want.items()}


def setup() -> tuple[Path, Path]:
    model, src = WORK / "model", WORK / "drums30.wav"
    if stale(model):
        import torch

        from segue.engine.backends.sa3_small.config import Sa3Config, sa3_small_config
        from segue.engine.backends.sa3_small.loading import export_official_state_dict
        from segue.engine.backends.sa3_small.model import SA3Model
        from tests.sa3.fixtures import randomize_, write_model_folder

        cfg = sa3_small_config()
        torch.manual_seed(7)
        m = SA3Model(Sa3Config.from_dict(cfg))
        randomize_(m, 7)
        write_model_folder(model, cfg, export_official_state_dict(m))
        del m
    if not (model / "t5gemma-b-b-ul2" / "model.safetensors").exists():
        full_t5gemma(model / "t5gemma-b-b-ul2")
    if not src.exists():
        from conftest import groove, write_wav

        write_wav(src, groove(30.0, SR, bpm=120.0), SR)
    return model, src


# ---------------------------------------------------------------- ours, through OSC

def engine(model: Path, precision: str, *options: str):
    port, out = free_port(), WORK / "renders"
    out.mkdir(parents=True, exist_ok=True)
    opts = [a for o in options for a in ("--option", o)]
    proc = subprocess.Popen(SEGUE + ["serve", "--backend", "sa3-small", "--model", str(model), "--precision",
                                     precision, "--port", str(port), "--allow-dir", str(out), "--timeout", "1200",
                                     *opts], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.perf_counter()
    while True:
        if proc.poll() is not None:
            raise RuntimeError("engine exited: " + proc.stdout.read())
        try:
            timed(port, "ping")
            break
        except RuntimeError:
            time.sleep(1)
    return proc, port, out, time.perf_counter() - t0


def ours(model: Path, src: Path, precision: str, repeats: int, idle: float) -> dict:
    proc, port, out, load_s = engine(model, precision)
    try:
        loaded = status_detail(port)
        beat = ["--bpm", "120", "--prompt", "tight funk drums", "--out", str(out)]
        res = {"load_s": load_s, "rss_after_load_bytes": loaded.get("rss_bytes"), "info": loaded}
        res["edit_first_s"] = timed(port, "inpaint", str(src), "10.0", "10.5", *beat, "--seed", "1")
        res["edit_reroll_s"] = [timed(port, "inpaint", str(src), "10.0", "10.5", *beat, "--seed", str(2 + k))
                                for k in range(repeats)]
        res["edit_new_region_now_s"] = timed(port, "inpaint", str(src), "16.0", "16.5", *beat, "--seed", "5")
        time.sleep(idle)
        res["idle_s"] = idle
        res["edit_new_region_after_idle_s"] = timed(port, "inpaint", str(src), "22.0", "22.5", *beat, "--seed", "6")
        res["continue_4_bars_s"] = [timed(port, "continue", str(src), "30.0", "4", *beat, "--seed", str(10 + k))
                                    for k in range(max(1, repeats - 1))]
        after = status_detail(port)
        res["peak_rss_bytes"] = after.get("peak_rss_bytes")
        res["info_after"] = after
    finally:
        proc.terminate()
        proc.wait(60)
    return res


def ours_official_window(model: Path, src: Path, precision: str) -> dict:
    proc, port, out, load_s = engine(model, precision, "window=official")
    try:
        beat = ["--bpm", "120", "--prompt", "tight funk drums", "--out", str(out)]
        first = timed(port, "inpaint", str(src), "10.0", "10.5", *beat, "--seed", "1")
        reroll = timed(port, "inpaint", str(src), "10.0", "10.5", *beat, "--seed", "2")
        return {"edit_first_s": first, "edit_reroll_s": reroll}
    finally:
        proc.terminate()
        proc.wait(60)


# ---------------------------------------------------------------- the official path (own process)

def reference_process(target: str, model: Path, src: Path) -> dict:
    # the same OpenMP barrier wait as the engine (engine/backends/neural/__init__.py), so both sides
    # are measured alike
    from segue.engine.backends.neural import openmp_env

    env = dict(openmp_env(), PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, __file__, "--oracle", target, str(model), str(src)], capture_output=True,
                       text=True, cwd=ROOT, env=env)
    if r.returncode != 0:
        raise RuntimeError("oracle failed: " + r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def oracle_main(target: str, model: Path, src: Path) -> None:
    from tests.sa3.oracle import _import_sat

    create, generate = _import_sat(target)
    import torch
    from safetensors.torch import load_file

    from conftest import read_audio

    cfg = json.loads((model / "model_config.json").read_text())
    built = json.loads(json.dumps(cfg))
    for c in built["model"]["conditioning"]["configs"]:
        if c["type"] == "t5gemma":
            c["config"]["model_path"] = str(model)
    t0 = time.perf_counter()
    sat = create(built).eval().requires_grad_(False)
    sat.load_state_dict(load_file(str(model / "model.safetensors")), strict=True)
    res = {"load_s": time.perf_counter() - t0}
    audio, sr = read_audio(src)
    audio = torch.from_numpy(audio)
    common = dict(steps=8, cfg_scale=1.0, sample_size=cfg["sample_size"], device="cpu", sampler_type="pingpong",
                  mask_padding_attention=True, use_effective_length_for_schedule=True, disable_tqdm=True)
    cases = {"edit": (30.0, 10.0, 10.5), "continue_4_bars": (38.0, 30.0, 38.0)}
    for name, (secs, a, b) in cases.items():
        kw = dict(common, seed=1, conditioning=[{"prompt": "tight funk drums, 120 BPM", "seconds_total": secs}],
                  inpaint_audio=(sr, audio), inpaint_mask_start_seconds=a, inpaint_mask_end_seconds=b)
        t0 = time.perf_counter()
        with torch.no_grad():
            generate(sat, **kw)
        res[f"{name}_s"] = time.perf_counter() - t0
    print(json.dumps(res))


# ---------------------------------------------------------------- where the time goes (in process)

def profile_main(model: Path, src: Path, precision: str) -> None:
    """Stage times of the backend, in process: T5Gemma, encode, DiT prepare, DiT steps, decode, paste.
    Requests: first on the file (10.0 s), two re-rolls, a new region (16.0 s); prefetch off."""
    from conftest import read_audio

    import segue.engine.backends.sa3_small.backend as B
    from segue.engine.backends.base import BackendConfig, JobContext, Task

    times: dict[str, float] = {}

    def timed(fn, label):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                times[label] = times.get(label, 0.0) + time.perf_counter() - t
        return wrapper

    b = B.Sa3SmallBackend(BackendConfig(model=str(model), precision=precision, extra={"prefetch": False}))
    b.load()
    m = b.model
    m.encode, m.decode = timed(m.encode, "encode"), timed(m.decode, "decode")
    m.prompt.forward = timed(m.prompt.forward, "t5gemma")
    b._dit_fn = timed(b._dit_fn, "dit_steps")
    m.dit.prepare = timed(m.dit.prepare, "dit_prepare")
    B.paste_regions = timed(B.paste_regions, "paste")
    audio, sr = read_audio(src)
    for label, at, seed in (("first", 10.0, 1), ("reroll", 10.0, 2), ("reroll", 10.0, 3), ("new_region", 16.0, 5)):
        times.clear()
        task = Task(kind="inpaint", sr=sr, channels=audio.shape[0], start_sample=int(at * sr), frames=int(0.5 * sr),
                    audio=audio, prompt="tight funk drums", seed=seed, source_key="bench")
        t = time.perf_counter()
        b.inpaint(task, JobContext())
        total = time.perf_counter() - t
        print(json.dumps({"request": label, "total_s": round(total, 3), **{k: round(v, 3) for k, v in times.items()},
                          "other_s": round(total - sum(times.values()), 3), "load": loadavg()}), flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--oracle":
        oracle_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--profile":
        profile_main(*setup(), sys.argv[2] if len(sys.argv) > 2 else "auto")
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--idle", type=float, default=20.0)
    ap.add_argument("--sat-target", default=str(Path(sys.executable).parents[1] / "sat-0.0.20"))
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--skip-official-window", action="store_true")
    ap.add_argument("--json", default=str(WORK / "results.json"))
    a = ap.parse_args()
    import torch

    t0 = time.perf_counter()
    model, src = setup()
    res = {"machine": f"{os.cpu_count()} cores, torch {torch.__version__}", "precision": a.precision,
           "setup_s": time.perf_counter() - t0, "load_before": loadavg(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    res["ours"] = ours(model, src, a.precision, a.repeats, a.idle)
    print(json.dumps(res["ours"], indent=1, default=str), flush=True)
    if not a.skip_official_window:
        res["ours_official_window"] = ours_official_window(model, src, a.precision)
        print(json.dumps(res["ours_official_window"]), flush=True)
    if not a.skip_reference:
        res["reference"] = ref = reference_process(a.sat_target, model, src)
        o = res["ours"]
        res["ratio_edit_first"] = ref["edit_s"] / o["edit_first_s"]
        res["ratio_edit_reroll"] = ref["edit_s"] / statistics.median(o["edit_reroll_s"])
        res["ratio_edit_new_region_now"] = ref["edit_s"] / o["edit_new_region_now_s"]
        res["ratio_edit_new_region_after_idle"] = ref["edit_s"] / o["edit_new_region_after_idle_s"]
        res["ratio_continue"] = ref["continue_4_bars_s"] / statistics.median(o["continue_4_bars_s"])
    res["load_after"] = loadavg()
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps({k: v for k, v in res.items() if k not in ("ours",)}, indent=1, default=str))


if __name__ == "__main__":
    main()
