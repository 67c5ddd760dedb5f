"""`musicgen-small`: autoregressive continuation and text-to-music with facebook/musicgen-small.

How a continuation runs (the model works at 32 kHz mono, 50 EnCodec frames/s):
1. Prompt: at most `prompt_seconds` of the audio before the join, starting on a bar line when the
   tempo is known, trimmed to whole 20 ms frames (plan.choose_prompt), mixed to mono and resampled
   to 32 kHz. The text prompt is always passed (prompt text and BPM; "music" when neither is given):
   with audio only, transformers feeds the decoder's BOS id to T5 as text.
2. transformers' generate() with the duplicate prefill skipped and a static KV cache
   (prefill.py), N = ceil(50 D) - P + 3 (+ a 2-frame margin for the resampler) new tokens, progress
   per block of tokens, cancel checked every token.
3. Back to the project: the 32 kHz output (re-decoded prompt + new audio) is resampled to the
   project rate from the prompt's first sample, so the new audio starts exactly at the join; it is
   level-matched to the source (RMS of the original prompt over the re-decoded one, clamped to
   [0.25, 4]: EnCodec's level drift), copied to the source's channel count and joined to the
   ORIGINAL audio with the shared edge join (engine/seams.join_source: equal-power crossfade
   from an AR extrapolation of the source). The prompt itself is never replaced: the timeline
   keeps the source's samples bit for bit, and the output is what follows the join, exactly
   `task.frames` long.
4. Longer than the model's window (`window_seconds`, 30 s: what musicgen-small was trained on):
   overlapping chunks, each continuing the timeline so far (source + generated) with the same
   prompt rule, each exact, each joined the same way.
Generate is the same loop with an empty first prompt. Inpaint is refused: an autoregressive
model only sees the left side of a region, so it cannot join the right side honestly.
Variations run one after another with seeds seed + k (generate() samples with torch's global
generator, so a batch would make a variation depend on the batch size).
"""

from __future__ import annotations

import inspect
import logging
import math
import time

import numpy as np
import torch

from ...audio_io import resample
from ...errors import SegueError
from ...seams import join_source
from ..base import Backend, BackendConfig, Capabilities, JobContext, Task
from ..neural import runtime
from ..neural.paste import fade_length, from_model_rate, level_gain
from ..neural.prompt import with_tempo
from . import plan
from .loading import LICENSE, load_model, part_sizes, resolve_model_dir
from .prefill import BlockProgress, static_cache

log = logging.getLogger("segue.musicgen")


def fit_left(x: np.ndarray, n: int) -> np.ndarray:
    """(n,) ending where x ends: trim or zero-pad at the start (keeps the join sample-aligned)."""
    if x.shape[-1] >= n:
        return x[..., x.shape[-1] - n:]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(n - x.shape[-1], 0)])


def match_gain(original: np.ndarray, decoded: np.ndarray, seconds: float = 2.0, sr: int = plan.MODEL_SR) -> float:
    """Gain that brings EnCodec's re-decoded prompt to the original's level: RMS ratio over the
    last `seconds` of both ((n,) at 32 kHz), clamped to [0.25, 4]; 1 when either is silent
    (the shared neural/paste.level_gain)."""
    n = min(original.shape[-1], decoded.shape[-1], int(seconds * sr))
    if n <= 0:
        return 1.0
    return level_gain(decoded[None, -n:], original[None, -n:])


class MusicgenBackend(Backend):
    name = "musicgen-small"

    def __init__(self, config: BackendConfig | None = None):
        super().__init__(config)
        x = self.config.extra or {}
        self.prompt_seconds = float(x.get("prompt_seconds", 10.0))
        self.window_seconds = float(x.get("window_seconds", 30.0))
        self.guidance_scale = float(x.get("guidance_scale", 3.0))
        self.top_k = int(x.get("top_k", 250))
        self.temperature = float(x.get("temperature", 1.0))
        self.block_tokens = int(x.get("progress_tokens", 25))          # one progress reply per 0.5 s of audio
        self.crossfade_seconds = float(x.get("crossfade_seconds", 0.02))
        self.margin_frames = int(x.get("margin_frames", 2))            # resampler tail, cut away
        self.max_output_seconds = float(x.get("max_output_seconds", 180.0))
        self.use_static_cache = bool(x.get("static_cache", True))
        self.compile = x.get("compile", "auto")
        self.warmup = bool(x.get("warmup", True))
        self.threads = x.get("threads")                                    # torch intra-op threads (CPU)
        if not 0 <= self.prompt_seconds < self.window_seconds - 1:
            raise SegueError("bad_option", f"prompt_seconds={self.prompt_seconds:g} must be >= 0 and leave at least "
                             f"1 s of the {self.window_seconds:g} s window")
        self.model = None
        self.tokenizer = None
        self.load_seconds = 0.0
        self._compile_on = False

    # ------------------------------------------------------------ loading
    def load(self) -> None:
        t0 = time.perf_counter()
        runtime.set_threads(self.threads)
        self.device = runtime.pick_device(self.config.device)
        self.dtype, _ = runtime.pick_dtypes(self.config.precision, self.device)
        if self.dtype == torch.float16:
            self.dtype = torch.float32 if self.device.type == "cpu" else torch.float16
        self.model_dir = resolve_model_dir(self.config.model)
        self.model, self.tokenizer = load_model(self.model_dir, self.dtype, self.device)
        dec = self.model.decoder.config
        if dec.num_codebooks != plan.DELAY + 1 or self.model.config.audio_encoder.sampling_rate != plan.MODEL_SR:
            raise SegueError("model_invalid", f"{self.model_dir}: expected 4 codebooks at 32 kHz, found "
                             f"{dec.num_codebooks} at {self.model.config.audio_encoder.sampling_rate} Hz")
        hop = int(np.prod(self.model.config.audio_encoder.upsampling_ratios))
        if hop != plan.HOP:
            raise SegueError("model_invalid", f"{self.model_dir}: EnCodec hop {hop}, expected {plan.HOP}")
        if self.window_seconds * plan.FRAME_RATE + 4 > dec.max_position_embeddings:
            raise SegueError("bad_option", f"window_seconds={self.window_seconds:g} exceeds the decoder's "
                             f"{dec.max_position_embeddings} positions")
        # transformers 5.24 names the cache argument `cache`; 5.23 `past_key_values`
        params = inspect.signature(self.model.prepare_inputs_for_generation).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._compile_on = runtime.compile_wanted(self.compile, self.device)
        if self.warmup:
            self._warm()
        self.load_seconds = time.perf_counter() - t0

    def _warm(self) -> None:
        """One short continuation so the first request does not pay for first-touch of weights and kernels."""
        ctx = JobContext()
        prompt = np.zeros(plan.HOP * 5, np.float32)
        self._generate(prompt, (plan.HOP * 5 + plan.HOP * 4) / plan.MODEL_SR, "music", 0, ctx, 0.0, 1.0)

    def _need_loaded(self) -> None:
        if self.model is None:
            raise SegueError("internal", "musicgen-small backend used before load()")

    def capabilities(self) -> Capabilities:
        return Capabilities(inpaint=False, continue_=True, generate=True, uses_prompt=True,
                            native_sr=plan.MODEL_SR, max_context_seconds=self.prompt_seconds,
                            max_output_seconds=self.max_output_seconds, request_options=frozenset())

    def info(self) -> dict:
        dev = getattr(self, "device", None)
        d = {"device": str(dev or "cpu"), "dtype": runtime.dtype_name(getattr(self, "dtype", torch.float32)),
             "license": LICENSE}
        if self.model is not None:
            d["codec_dtype"] = "float32"
            d["weights_bytes"] = runtime.weights_bytes(self.model)
            d["parameters"] = part_sizes(self.model)
            d["model_dir"] = str(self.model_dir)
            d["load_seconds"] = round(self.load_seconds, 2)
            d["static_cache"] = self.use_static_cache
            d["compiled"] = self._compile_on
            d["threads"] = torch.get_num_threads()
            d["prompt_seconds"] = self.prompt_seconds
            d["window_seconds"] = self.window_seconds
        d.update(runtime.memory_info(dev))
        return d

    # ------------------------------------------------------------ requests
    def inpaint(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        raise SegueError("unsupported", "musicgen-small is autoregressive: it only hears the audio before a region, "
                         "so it cannot fill one and join the audio after it; inpaint with backend sao-small or dsp")

    def continue_(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        self._need_loaded()
        return [self.timeline(task, ctx, k)[:, task.start_sample:] for k in range(task.variations)]

    def generate(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        self._need_loaded()
        return [self.timeline(task, ctx, k) for k in range(task.variations)]

    def text_for(self, task: Task) -> str:
        """The text prompt, never empty: the request's prompt and the tempo, else "music"."""
        return with_tempo(task.prompt or "", task.grid) or "music"

    # ------------------------------------------------------------ the chunk loop
    def timeline(self, task: Task, ctx: JobContext, k: int = 0) -> np.ndarray:
        """Variation k as the whole timeline: (channels, start_sample + frames) float32 whose first
        `start_sample` samples are the source's own, bit for bit (continue), followed by exactly
        `task.frames` generated samples. Generate: start_sample is 0, no source."""
        sr, ch = task.sr, task.channels
        if task.kind == "continue" and task.audio is not None:
            hist = np.asarray(task.audio[:, : task.start_sample], dtype=np.float32)
        else:
            hist = np.zeros((ch, 0), np.float32)
        parts, have = [hist], hist.shape[1]
        total = task.variations * task.frames
        produced, chunk = 0, 0
        text = self.text_for(task)
        while produced < task.frames:
            tl = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
            parts = [tl]
            win = plan.choose_prompt(have, sr, self.prompt_seconds, task.grid)
            n_new = plan.chunk_new_samples(task.frames - produced, sr, win.samples32, self.window_seconds,
                                           self.margin_frames)
            prompt32 = None
            if win.samples32:
                mono = tl[:, win.start:have].mean(axis=0, keepdims=True)
                prompt32 = fit_left(resample(mono, sr, plan.MODEL_SR)[0], win.samples32)
            done = k * task.frames + produced
            lo, hi = 0.05 + 0.9 * done / total, 0.05 + 0.9 * (done + n_new) / total
            seconds = win.samples32 / plan.MODEL_SR + n_new / sr
            y32 = self._generate(prompt32, seconds, text, task.seed + k + 7919 * chunk, ctx, lo, hi)
            gain = match_gain(prompt32, y32[: win.samples32]) if prompt32 is not None else 1.0
            # to the project rate from the prompt's first sample (timeline sample win.start): the
            # prompt is a whole number of frames at both rates, so the join falls on a shared sample
            new = from_model_rate(y32[None], 0, plan.MODEL_SR, sr, win.samples, n_new, 1)
            out = np.repeat(new * np.float32(gain), ch, axis=0)
            if have >= 2:
                join_source(out, tl, have, fade_length(self.crossfade_seconds, sr, n_new), right=False)
            parts.append(out)
            have += n_new
            produced += n_new
            chunk += 1
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    # ------------------------------------------------------------ one generate() call
    @torch.inference_mode()
    def _generate(self, prompt32: np.ndarray | None, seconds: float, text: str, seed: int, ctx: JobContext,
                  lo: float, hi: float) -> np.ndarray:
        """32 kHz mono audio covering `seconds` in all (prompt included; the prompt part re-decoded
        by EnCodec), plus `margin_frames` frames. prompt32: (n,) float32 at 32 kHz, a whole number
        of 640-sample frames, or None for text only."""
        ps = 0 if prompt32 is None else int(prompt32.shape[-1])
        n = plan.new_tokens(ps, seconds, self.margin_frames)
        enc = self.tokenizer([text], return_tensors="pt", padding=True)
        kw = dict(input_ids=enc["input_ids"].to(self.device), attention_mask=enc["attention_mask"].to(self.device),
                  max_new_tokens=n, do_sample=True, guidance_scale=self.guidance_scale, top_k=self.top_k,
                  temperature=self.temperature)
        if ps:
            kw["input_values"] = torch.from_numpy(np.ascontiguousarray(prompt32, np.float32))[None, None].to(self.device)
        if self.use_static_cache:
            need = 1 + plan.prompt_frames(ps) + n
            kw[self._cache_kw] = static_cache(self.model, -(-need // 64) * 64)
        from transformers import StoppingCriteriaList

        ctx.progress(lo, "prompt" if ps else "text")
        crit = BlockProgress(ctx, n, self.block_tokens, lo, hi)
        torch.manual_seed(int(seed) % (2 ** 63))
        try:
            audio = self.model.generate(**kw, stopping_criteria=StoppingCriteriaList([crit]),
                                        disable_compile=not self._compile_on)
        except SegueError:
            raise
        except torch.OutOfMemoryError as e:
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise SegueError("out_of_memory", "the device ran out of memory; try fewer bars or --precision bf16") from e
        except Exception as e:
            if not self._compile_on:
                raise
            # torch.compile failed on this machine: serve eagerly from now on
            log.warning("torch.compile failed (%s: %s); generating eagerly", type(e).__name__, e)
            self._compile_on = False
            return self._generate(prompt32, seconds, text, seed, ctx, lo, hi)
        finally:
            self.model._memo_clear()
        y = audio[0, 0].float().cpu().numpy()
        want = plan.output_frames(ps, n) * plan.HOP
        if y.shape[-1] != want:
            raise SegueError("internal", f"MusicGen returned {y.shape[-1]} samples, expected {want} "
                             "(has transformers changed its delay pattern?)")
        return y
