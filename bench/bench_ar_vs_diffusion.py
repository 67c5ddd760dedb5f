"""Autoregressive against diffusion, measured: musicgen-small and sao-small continuing the same
4 s prompt by N bars at 120 BPM, in one run; and musicgen's tokens/s against plain transformers.

Both backends use full-size random weights in the official layouts (musicgen-small: built from
configs by tests/musicgen/fixtures.py, 586.9M parameters; sao-small: bench/bench_sao_small.py's
checkpoint builder and t5-base stand-in). Each backend runs in its own worker process so its peak
memory (ru_maxrss) is its own; requests go through the backend API (`continue_`), as the engine
calls it.

Part 1, per backend and length: wall time, real-time factor (wall / seconds of audio made), peak
RSS, and growth with length (time at N bars / time at the shortest).
Part 2, musicgen only, the same prompt and token count, alternating A/B in one process:
plain `MusicgenForConditionalGeneration.from_pretrained(...).generate()` (fp32, dynamic cache,
prompt prefill twice) against ours (prefill once, static cache, bf16 where the CPU has it; and
ours in fp32 to separate the dtype from the rest). Tokens/s = new tokens / generate() wall time;
also the median time of one decode step.

    PYTHONPATH=. .venv/bin/python bench/bench_ar_vs_diffusion.py [--bars 4,8,16] [--tokens 100]
        [--repeats 2] [--threads N] [--skip-sao] [--skip-musicgen] [--skip-tokens] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# the engine's OpenMP barrier wait (engine/backends/neural/__init__.py), set before torch loads,
# inherited by the workers
import segue.engine.backends.neural  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

WORK = Path(os.environ.get("AR_BENCH_DIR", "/tmp/ar_bench"))
SR, BPM, PROMPT_S = 44100, 120.0, 4.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    """Resident memory now (the peak above includes the load, where musicgen reads fp32 before bf16)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def musicgen_folder() -> Path:
    folder = WORK / "musicgen-small"
    if not (folder / "model.safetensors").exists():
        from tests.musicgen.fixtures import write_fullsize_folder

        write_fullsize_folder(folder, seed=7)
    return folder


def source() -> np.ndarray:
    from conftest import groove

    return groove(PROMPT_S, SR, bpm=BPM)


def continue_task(bars: float):
    from segue.engine.backends import Task
    from segue.engine.timeline import Grid, bars_to_samples

    src = source()
    g = Grid(BPM)
    return Task("continue", SR, 2, src.shape[1], bars_to_samples(bars, g, SR), src, g, "funk drums", 1, 1)


# ---------------------------------------------------------------- workers (one process each)

def worker_continue(backend_name: str, bars_list: list[float]) -> dict:
    from segue.engine.backends import BackendConfig, JobContext, create

    if backend_name == "musicgen-small":
        cfg = BackendConfig(model=str(musicgen_folder()), precision="auto")
    else:
        from bench.bench_sao_small import setup

        model, t5, _ = setup()
        cfg = BackendConfig(model=str(model), text_encoder=str(t5), precision="auto")
    t0 = time.perf_counter()
    b = create(backend_name, cfg)
    b.load()
    out = {"backend": backend_name, "load_s": round(time.perf_counter() - t0, 1), "dtype": b.info().get("dtype"),
           "peak_rss_after_load_mb": round(peak_rss_mb()), "rss_after_load_mb": round(rss_mb()), "runs": []}
    for bars in bars_list:
        task = continue_task(bars)
        t0 = time.perf_counter()
        y = b.continue_(task, JobContext())[0]
        dt = time.perf_counter() - t0
        assert y.shape == (2, task.frames)
        secs = task.frames / SR
        out["runs"].append({"bars": bars, "seconds": round(secs, 3), "wall_s": round(dt, 1),
                            "rtf": round(dt / secs, 2), "peak_rss_mb": round(peak_rss_mb()),
                            "rss_mb": round(rss_mb())})
        print(json.dumps(out["runs"][-1]), file=sys.stderr, flush=True)
    return out


def worker_tokens(n_tokens: int, repeats: int) -> dict:
    """Plain generate() against ours on the same 4 s prompt, alternating."""
    import torch
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration, StoppingCriteria, StoppingCriteriaList
    from transformers.utils import logging as hf_logging

    from segue.engine.audio_io import resample
    from segue.engine.backends import BackendConfig, JobContext, create
    from segue.engine.backends.musicgen import plan

    hf_logging.set_verbosity_error()
    folder = musicgen_folder()

    class Stamps(StoppingCriteria):
        def __init__(self):
            self.t = []

        def __call__(self, input_ids, scores, **kw):
            self.t.append(time.perf_counter())
            return torch.zeros(input_ids.shape[0], dtype=torch.bool)

    mono = source().mean(axis=0, keepdims=True)
    prompt32 = resample(mono, SR, plan.MODEL_SR)[0][-(int(PROMPT_S * 50) * plan.HOP):]
    seconds = prompt32.shape[-1] / plan.MODEL_SR + (n_tokens - plan.DELAY) / plan.FRAME_RATE
    text = "funk drums, 120 BPM"

    plain = MusicgenForConditionalGeneration.from_pretrained(str(folder)).eval()
    tok = AutoTokenizer.from_pretrained(str(folder))
    enc = tok([text], return_tensors="pt")

    def run_plain():
        st = Stamps()
        torch.manual_seed(0)
        t0 = time.perf_counter()
        with torch.inference_mode():
            plain.generate(**enc, input_values=torch.from_numpy(prompt32)[None, None], max_new_tokens=n_tokens,
                           do_sample=True, guidance_scale=3.0, top_k=250, stopping_criteria=StoppingCriteriaList([st]))
        return time.perf_counter() - t0, st.t

    ours = {}
    for prec in ("auto", "fp32"):
        b = create("musicgen-small", BackendConfig(model=str(folder), precision=prec,
                                                   extra={"margin_frames": 0, "warmup": False}))
        b.load()
        b.block_tokens = 10 ** 9          # no progress replies: ctx.check() then stamps exactly one per token
        ours[f"ours_{b.info()['dtype']}"] = b

    def run_ours(b):
        st = Stamps()
        times = []

        class Ctx(JobContext):
            def check(self):
                times.append(time.perf_counter())

        t0 = time.perf_counter()
        b._generate(prompt32, seconds, text, 0, Ctx(), 0.0, 1.0)
        return time.perf_counter() - t0, times

    runners = {"plain_float32": run_plain, **{k: (lambda b=b: run_ours(b)) for k, b in ours.items()}}
    for name, fn in runners.items():      # untimed: first touch of the weights (mmap page-in) and kernels
        fn()
        print(f"warm-up {name} done", file=sys.stderr, flush=True)
    walls = {k: [] for k in runners}
    steps = {k: [] for k in runners}
    for r in range(repeats):
        order = list(runners.items()) if r % 2 == 0 else list(runners.items())[::-1]   # A/B, then B/A
        for name, fn in order:
            dt, stamps = fn()
            walls[name].append(dt)
            steps[name].extend(np.diff(stamps).tolist())
            print(f"round {r} {name}: {dt:.1f} s", file=sys.stderr, flush=True)
    out = {"tokens": n_tokens, "prompt_seconds": PROMPT_S, "repeats": repeats, "results": {}}
    for name in runners:
        w = statistics.median(walls[name])
        out["results"][name] = {"wall_s_median": round(w, 2), "tokens_per_s": round(n_tokens / w, 2),
                                "step_ms_median": round(1000 * statistics.median(steps[name]), 1),
                                "walls": [round(x, 1) for x in walls[name]]}
    base = out["results"]["plain_float32"]["tokens_per_s"]
    for name, r in out["results"].items():
        r["speedup_vs_plain"] = round(r["tokens_per_s"] / base, 2)
    return out


# ---------------------------------------------------------------- orchestration

def spawn(threads: int, *args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, __file__, "--threads", str(threads), "--worker", *args],
                       stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)   # the worker's stderr (one line per run) goes straight to ours
    if r.returncode != 0:
        raise RuntimeError(f"worker {args} failed")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", default="4,8,16")
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-sao", action="store_true")
    ap.add_argument("--skip-musicgen", action="store_true")
    ap.add_argument("--skip-tokens", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads in every worker (0: torch's)")
    ap.add_argument("--worker", nargs="*")
    a = ap.parse_args()
    if a.threads:
        import torch

        torch.set_num_threads(a.threads)
    if a.worker:
        kind = a.worker[0]
        res = worker_tokens(int(a.worker[1]), int(a.worker[2])) if kind == "tokens" else \
            worker_continue(kind, [float(x) for x in a.worker[1].split(",")])
        print(json.dumps(res))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    musicgen_folder()
    report = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "bars": a.bars, "threads": a.threads}
    if not a.skip_tokens:
        report["tokens"] = spawn(a.threads, "tokens", str(a.tokens), str(a.repeats))
    for name, skip in (("musicgen-small", a.skip_musicgen), ("sao-small", a.skip_sao)):
        if not skip:
            report[name] = spawn(a.threads, name, a.bars)
    print(json.dumps(report, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1))
    # side by side
    if "musicgen-small" in report and "sao-small" in report:
        print("\nbars  seconds  musicgen s (RTF)  sao s (RTF)  musicgen/sao")
        for m, s in zip(report["musicgen-small"]["runs"], report["sao-small"]["runs"]):
            print(f"{m['bars']:>4g}  {m['seconds']:>7.2f}  {m['wall_s']:>8.1f} ({m['rtf']:.2f})  "
                  f"{s['wall_s']:>6.1f} ({s['rtf']:.2f})  {m['wall_s'] / s['wall_s']:.2f}")


if __name__ == "__main__":
    main()
