"""sao-small speed, side by side with the reference stable-audio-tools 0.0.19 pipeline.

Same full-size random weights for both (written once with the official key layout),
a t5-base-shaped stand-in text encoder, a 30 s stereo source at 44.1 kHz.

Ours: `segue serve --backend sao-small` + the `segue` client, end to end over OSC:
  - 1-bar inpaint (2 s at 120 BPM) in the 30 s source: first request on the file (10-12 s),
    then repeated edits of the same region (cached source latents), three new regions right
    away (20-22, 3-5 and 26-28 s: windows apart from every earlier one, so all their context
    frames are new; median), and a new region after the engine was idle for --idle seconds
    (14-16 s; the idle prefetch encodes the file around the last edit meanwhile);
  - text-to-audio of 11.9 s.
Reference (in process, fp32 as SAT runs on a CPU): encode + 8 ping-pong steps + decode
over the full 11.9 s window, and text-to-audio 11.9 s (8 steps + decode); --ref-repeats runs
(median) after ours.

    PYTHONPATH=. .venv/bin/python bench/bench_sao_small.py [--precision auto|fp32|bf16] [--skip-reference]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# the engine's OpenMP barrier wait (engine/backends/neural/__init__.py) for the in-process
# reference too, before torch loads, so both sides are measured alike
import segue.engine.backends.neural  # noqa: E402,F401

import numpy as np  # noqa: E402
import torch  # noqa: E402
from segue_cli import SEGUE, free_port, loadavg  # noqa: E402
from segue_cli import timed as _timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from segue.engine.backends.sao_small.config import sao_small_config  # noqa: E402
from tests.sao.fixtures import build_sat_model, make_t5_folder, write_model_folder  # noqa: E402

WORK = Path(os.environ.get("SAO_BENCH_DIR", "/tmp/sao_bench"))   # weights reused from earlier runs


def setup() -> tuple[Path, Path, Path]:
    model, t5, src = WORK / "model", WORK / "t5-base", WORK / "source30.wav"
    if not (model / "model.safetensors").exists():
        sat = build_sat_model(sao_small_config(), seed=7)
        write_model_folder(model, sao_small_config(), {k: v.float() for k, v in sat.state_dict().items()})
        del sat
        gc.collect()
    if not (t5 / "config.json").exists():
        make_t5_folder(t5, d_model=768, layers=12, heads=12, d_ff=3072)
    if not src.exists():
        from pedalboard.io import AudioFile

        sr, n = 44100, 30 * 44100
        t = np.arange(n) / sr
        rng = np.random.default_rng(0)
        beat = (np.mod(t, 0.5) < 0.03) * rng.normal(0, 0.5, n)
        x = 0.3 * np.sin(2 * np.pi * 110 * t) + 0.2 * np.sin(2 * np.pi * 440 * t) * (np.mod(t, 2) < 1) + beat
        stereo = np.stack([x, np.roll(x, 50)]).astype(np.float32)
        with AudioFile(str(src), "w", sr, 2) as f:
            f.write(stereo)
    return model, t5, src


def timed(port: int, *args) -> float:
    return _timed(port, *args, timeout=900)      # the engine's own --timeout here


def ours(model: Path, t5: Path, src: Path, precision: str, repeats: int, idle: float) -> dict:
    port, out = free_port(), WORK / "out"
    out.mkdir(exist_ok=True)
    eng = subprocess.Popen(SEGUE + ["serve", "--backend", "sao-small", "--model", str(model), "--text-encoder",
                                    str(t5), "--precision", precision, "--port", str(port),
                                    "--allow-dir", str(out), "--timeout", "900"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        t0 = time.perf_counter()
        while True:
            if eng.poll() is not None:
                raise RuntimeError("engine exited: " + eng.stdout.read())
            try:
                timed(port, "ping")
                break
            except RuntimeError:
                time.sleep(1)
        load_s = time.perf_counter() - t0
        opts = ["--bpm", "120", "--prompt", "tight funk drums", "--out", str(out)]
        first = timed(port, "inpaint", str(src), "10.0", "12.0", *opts, "--seed", "1")
        repeat = [timed(port, "inpaint", str(src), "10.0", "12.0", *opts, "--seed", str(2 + k))
                  for k in range(repeats)]
        # new regions right away, windows apart from every earlier edit's (2 s of context each side), so
        # each encodes all of its context: three samples of the case, not one
        other = [timed(port, "inpaint", str(src), a, b, *opts, "--seed", str(9 + k))
                 for k, (a, b) in enumerate((("20.0", "22.0"), ("3.0", "5.0"), ("26.0", "28.0")))]
        time.sleep(idle)
        after_idle = timed(port, "inpaint", str(src), "14.0", "16.0", *opts, "--seed", "20")
        gen = [timed(port, "generate", "5.94", *opts, "--seed", str(k)) for k in range(max(1, repeats - 1))]
        r = subprocess.run(SEGUE + ["status", "--detail", "--port", str(port)], capture_output=True, text=True, cwd=ROOT)
        return {"load_s": load_s, "inpaint_first_s": first, "inpaint_repeat_s": repeat,
                "inpaint_new_region_same_file_s": other, "idle_s": idle,
                "inpaint_new_region_after_idle_s": after_idle, "generate_11_9s_s": gen, "status": r.stdout.strip()}
    finally:
        eng.terminate()
        eng.wait(30)


@torch.inference_mode()
def reference(model: Path, t5: Path) -> dict:
    from safetensors.torch import load_file

    from tests.sao.fixtures import install_sat_stubs

    install_sat_stubs()   # SAT imports torchaudio & co. at module level; stand in for them
    from stable_audio_tools.inference.generation import generate_diffusion_cond

    cfg = sao_small_config()
    sat = build_sat_model(cfg, randomize=False)
    sat.load_state_dict({k: v for k, v in load_file(str(model / "model.safetensors")).items()}, strict=True)
    sat.pretransform.model.float()          # fp32 throughout (model_half would run the VAE in fp16 on CPU)
    sat.pretransform.model_half = False
    from segue.engine.backends.sao_small.conditioners import load_text_encoder

    text = load_text_encoder(str(t5), 64)
    emb = text.embed(["tight funk drums, 120 BPM"])
    secs = sat.conditioner.conditioners.seconds_total([11.89], "cpu")
    cond = {"prompt": (emb, torch.ones(1, 64)), "seconds_total": secs}
    audio = torch.randn(1, 2, 524288) * 0.2
    res = {}
    t0 = time.perf_counter()
    lat = sat.pretransform.encode(audio)
    res["encode_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lat = generate_diffusion_cond(sat, steps=8, cfg_scale=1.0, conditioning_tensors=cond, sample_size=524288,
                                  seed=1, device="cpu", sampler_type="pingpong", return_latents=True,
                                  init_audio=None)
    res["dit_8_steps_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sat.pretransform.decode(lat)
    res["decode_s"] = time.perf_counter() - t0
    res["audio_to_audio_s"] = res["encode_s"] + res["dit_8_steps_s"] + res["decode_s"]
    res["text_to_audio_s"] = res["dit_8_steps_s"] + res["decode_s"]
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--idle", type=float, default=20.0)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--ref-repeats", type=int, default=2)
    ap.add_argument("--json", default=str(WORK / "results.json"))
    a = ap.parse_args()
    model, t5, src = setup()
    res = {"machine": f"{os.cpu_count()} cores, torch {torch.__version__}", "precision": a.precision,
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_before": loadavg()}
    res["ours"] = ours(model, t5, src, a.precision, a.repeats, a.idle)
    print(json.dumps(res["ours"], indent=1), flush=True)
    if not a.skip_reference:
        runs = [reference(model, t5) for _ in range(max(1, a.ref_repeats))]
        res["reference_runs"] = runs
        res["reference"] = ref = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        o = res["ours"]
        res["speedup_inpaint_first"] = ref["audio_to_audio_s"] / o["inpaint_first_s"]
        res["speedup_inpaint_repeat"] = ref["audio_to_audio_s"] / statistics.median(o["inpaint_repeat_s"])
        res["speedup_new_region_now"] = ref["audio_to_audio_s"] / statistics.median(o["inpaint_new_region_same_file_s"])
        res["speedup_new_region_after_idle"] = ref["audio_to_audio_s"] / o["inpaint_new_region_after_idle_s"]
        res["speedup_text_to_audio"] = ref["text_to_audio_s"] / statistics.median(o["generate_11_9s_s"])
    res["load_after"] = loadavg()
    Path(a.json).write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
