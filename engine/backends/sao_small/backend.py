"""`sao-small`: Stable Audio Open Small serving inpaint, continue and generate.

How an edit runs (all at the model's 44.1 kHz, stereo; the shared pieces are in
engine/backends/neural/):
1. Each region is snapped outward to latent frames (2048 samples). A context
   window of latent frames is chosen around the regions (at most the model's
   ~11.9 s), `context_seconds` each side, one side's unused share given to the
   other (neural/window.py). Regions too far apart for one window are made in
   separate windows; one region longer than the window is made in chunks.
2. Latents of the known frames come from the per-source latent cache (file
   content and rate): only frames no earlier edit encoded are encoded, with the
   encoder's receptive field as margin (neural/latent_cache.py).
3. Ping-pong sampling with latent blending: after every step the frames outside
   the regions are reset to the clean latent noised to the next t.
4. Only the regions' frames (+1 each side, + the decoder's receptive field) are
   decoded, level-matched to the source, resampled to the task rate and pasted
   into the source (bit-identical outside the regions) with equal-power joins
   from an AR extrapolation of the source (neural/paste.py); a continuation's
   first samples are bent to continue the source's last sample.
Variations are one batch with seeds seed + k (per-row generators, so a
variation does not depend on the batch size), halved on out-of-memory.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from ...errors import SegueError
from ..base import Backend, BackendConfig, Capabilities, JobContext, Task
from ..neural import hub, runtime
from ..neural.prefetch import IdlePrefetcher
from ..neural.latent_cache import LatentCache, SourceLatents
from ..neural.prompt import with_tempo
from ..neural.paste import (bend_into, fade_length, from_model_rate, level_gain, outside_mask, paste_regions,
                           warm_paste)
from ..neural.window import context_window, group_regions, keep_mask, snap, union
from .conditioners import TextEncoder, load_text_encoder
from .loading import load_model, resolve_model_dir
from .oobleck import decoder_margin, encoder_margin
from .sampler import rf_schedule, sample_pingpong

T5_REPOS = ("google-t5/t5-base", "t5-base")
T5_FILES = ["config.json", ("model.safetensors", "pytorch_model.bin"), ("tokenizer.json", "spiece.model")]


def resolve_text_encoder(spec: str | None, model_dir: Path) -> Path:
    """--text-encoder folder (or repo id), else `t5-base` beside the model, else the HF cache."""
    if spec:
        return hub.locate(spec, T5_REPOS[0], need=T5_FILES, what="t5-base text encoder",
                          code="text_encoder_missing", pull="segue models pull sao-small")
    for cand in (model_dir / "t5-base", model_dir.parent / "t5-base"):
        if cand.is_dir() and not hub.missing_files(cand, T5_FILES):
            return cand
    for repo in T5_REPOS:
        snap_dir = hub.cached_snapshot(repo)
        if snap_dir is not None and not hub.missing_files(snap_dir, T5_FILES):
            return snap_dir
    raise SegueError("text_encoder_missing", "the t5-base text encoder was not found: pass --text-encoder FOLDER, "
                     f"put it in {model_dir / 't5-base'}, or run `segue models pull sao-small` "
                     f"(it fetches google-t5/t5-base into {hub.hub_cache_dir()})")


class SaoSmallBackend(Backend):
    name = "sao-small"

    def __init__(self, config: BackendConfig | None = None):
        super().__init__(config)
        x = self.config.extra or {}
        self.steps = int(x.get("steps", 8))
        self.cfg_scale = float(x.get("cfg_scale", 1.0))
        self.context_seconds = float(x.get("context_seconds", 2.0))   # each side; 3 s costs ~1.4x the encode
        self.crossfade_seconds = max(0.02, float(x.get("crossfade_seconds", 0.03)))
        self.decode_margin = x.get("decode_margin")       # None: the exact receptive field
        self.compile = x.get("compile", "auto")
        self.compile_backend = x.get("compile_backend")
        self.threads = x.get("threads")
        self.warmup = bool(x.get("warmup", True))
        self.prefetch = bool(x.get("prefetch", True))     # encode the rest of a file while idle
        # seconds of idle before the prefetch starts: a re-roll fired right after a reply must not wait
        # behind a prefetch chunk (~1.5 s for 24 frames + margins on 2 cores)
        self.prefetch_delay = float(x.get("prefetch_delay", 1.0))
        self.cache_bytes = int(float(x.get("latent_cache_mb", 512)) * (1 << 20))
        self.model = None
        self.text: TextEncoder | None = None
        self.cache: LatentCache | None = None
        self.load_seconds = 0.0

    # ------------------------------------------------------------ loading
    def load(self) -> None:
        t0 = time.perf_counter()
        self.device = runtime.pick_device(self.config.device)
        self.dit_dtype, self.vae_dtype = runtime.pick_dtypes(self.config.precision, self.device)
        runtime.set_threads(self.threads)
        folder = resolve_model_dir(self.config.model)
        self.model_dir = folder
        self.model, self.meta = load_model(folder, self.dit_dtype, self.vae_dtype, self.device)
        self.cfg = self.model.cfg
        t5_dir = resolve_text_encoder(self.config.text_encoder, folder)
        t5_dtype = torch.float16 if self.device.type == "cuda" else torch.float32   # SAT runs T5 in fp16
        try:
            self.text = load_text_encoder(str(t5_dir), self.cfg.cond.t5_max_length, str(self.device), t5_dtype)
        except SegueError:
            raise
        except Exception as e:
            raise SegueError("text_encoder_missing", f"cannot load the text encoder from {t5_dir}: {e}") from e
        if self.text.dim != self.cfg.cond.cond_dim:
            raise SegueError("model_invalid", f"text encoder in {t5_dir} has width {self.text.dim}, "
                             f"the model expects {self.cfg.cond.cond_dim} (t5-base)")
        self.t5_dir = t5_dir
        self.ratio = self.cfg.vae.downsampling_ratio
        self.sr = self.cfg.sample_rate
        self.enc_margin = encoder_margin(self.cfg.vae)
        self.dec_margin = decoder_margin(self.cfg.vae) if self.decode_margin is None else int(self.decode_margin)
        self.cache = LatentCache(self._encode, self.ratio, self.cfg.vae.latent_dim, self.enc_margin, self.sr,
                                 max_bytes=self.cache_bytes)
        self._dit_fn = runtime.CompileOrEager(self.model.dit, enabled=runtime.compile_wanted(self.compile, self.device),
                                              backend=self.compile_backend)
        if self.warmup:
            self._warm()
        self.prefetcher = IdlePrefetcher(self.cache, chunk=24, delay=self.prefetch_delay, name="sao-prefetch",
                                         enabled=self.prefetch)
        self.prefetcher.start()
        self.load_seconds = time.perf_counter() - t0

    def _encode(self, audio: torch.Tensor) -> torch.Tensor:
        return self.model.vae.encode(audio.to(self.device))

    @torch.inference_mode()
    def _warm(self) -> None:
        n = 8
        dev = self.device
        cross = torch.zeros(1, self.cfg.cond.t5_max_length + 1, self.cfg.cond.cond_dim, device=dev)
        self._dit_fn(torch.zeros(1, self.cfg.dit.io_channels, n, device=dev), torch.ones(1, device=dev),
                     cross, cross[:, 0])
        self.model.vae.decode(torch.zeros(1, self.cfg.vae.latent_dim, 2, device=dev))
        # the encoder too: its weights and kernels are otherwise first touched by the first edit (~1 s)
        self.model.vae.encode(torch.zeros(1, 2, 4 * self.cfg.vae.downsampling_ratio, device=dev))
        self.text.embed([""])
        warm_paste(self.sr)                 # the seam's first use (scipy.signal import), ~0.4-1 s

    def _need_loaded(self) -> None:
        if self.model is None:
            raise SegueError("internal", "sao-small backend used before load()")

    def capabilities(self) -> Capabilities:
        # max_context_seconds None: the engine hands over the whole source. The model's own window
        # (neural/window.py) picks the context; the per-file latent cache indexes the whole file, so a
        # new region anywhere reuses every frame already encoded.
        return Capabilities(inpaint=True, continue_=True, generate=True, uses_prompt=True, native_sr=44100,
                            max_context_seconds=None, max_output_seconds=600.0, request_options=frozenset())

    def info(self) -> dict:
        dev = getattr(self, "device", None)
        d = {"device": str(dev or "cpu"), "dtype": runtime.dtype_name(getattr(self, "dit_dtype", torch.float32))}
        if self.model is not None:
            d["vae_dtype"] = runtime.dtype_name(self.vae_dtype)
            d["weights_bytes"] = runtime.weights_bytes(self.model)
            d["parameters"] = self.model.part_sizes()
            d["model_dir"] = str(self.model_dir)
            d["text_encoder"] = str(self.t5_dir)
            d["load_seconds"] = round(self.load_seconds, 2)
            d["dit"] = self._dit_fn.mode
            d["threads"] = torch.get_num_threads()
            d["latent_cache_bytes"] = self.cache.store.current_bytes
        d.update(runtime.memory_info(dev))
        return d

    def close(self) -> None:
        if getattr(self, "prefetcher", None) is not None:
            self.prefetcher.close()

    # ------------------------------------------------------------ requests
    def inpaint(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        return self._request(task, ctx)

    def continue_(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        return self._request(task, ctx)

    def generate(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        return self._request(task, ctx)

    def _request(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        self._need_loaded()
        ctx.progress(0.02, "prepare")
        with self.prefetcher.request(task, self._frames_of) as src:
            return self._edit(task, src, ctx)

    # ------------------------------------------------------------ the edit
    def prompt_for(self, task: Task) -> str:
        return with_tempo(task.prompt, task.grid)

    def _frames_of(self, task: Task, a: int, n: int) -> tuple[int, int]:
        """Latent frames touching task samples [a, a + n)."""
        return snap(a * self.sr / task.sr, (a + n) * self.sr / task.sr, self.ratio)

    def _edit(self, task: Task, src: SourceLatents | None, ctx: JobContext) -> list[np.ndarray]:
        regions = task.regen_regions() if task.kind == "inpaint" else [(task.start_sample, task.frames)]
        cap = self.cfg.max_latents
        frames = [self._frames_of(task, a, n) for a, n in regions]
        by_frames = dict(zip(frames, regions))
        ys = [np.zeros((task.channels, task.frames), np.float32) for _ in range(task.variations)]
        joined = []     # regions whose joins are already made (chunked)
        for group in group_regions(frames, cap - 2):
            regs = [by_frames[f] for f in group]
            fa, fb = union(group)
            if fb - fa > cap - 2:              # one region longer than the window: chunk by chunk
                (a, n), = regs
                outs = self._chunked(task, a, n, ctx)
                joined.append((a, n))
            else:
                outs = self._window_edit(task, src, regs, group, ctx)
            for y, o in zip(ys, outs):
                for a, n in regs:
                    r0 = a - task.start_sample
                    y[:, r0:r0 + n] = o[:, r0:r0 + n] if o.shape[-1] == task.frames else o
        if task.kind == "inpaint":
            left = [r for r in regions if r not in joined]
            outs = []
            for y in ys:
                out = paste_regions(y, task.audio, task.start_sample, left, self.crossfade_seconds, task.sr)
                for a, n in joined:
                    out[:, a - task.start_sample: a - task.start_sample + n] = y[:, a - task.start_sample:
                                                                                a - task.start_sample + n]
                outs.append(out)
            return outs
        if task.kind == "continue" and not joined:
            fade = fade_length(self.crossfade_seconds, task.sr, task.frames)
            return [bend_into(y, task.audio, fade) for y in ys]
        return ys

    def _window_edit(self, task: Task, src: SourceLatents | None, regions: list[tuple[int, int]],
                     frames: list[tuple[int, int]], ctx: JobContext) -> list[np.ndarray]:
        """One window holding `regions` (task samples; `frames` their latent frames) -> per variation
        (channels, task.frames) at task.sr, valid inside the regions (not yet joined)."""
        ratio, sr = self.ratio, self.sr
        fa, fb = union(frames)
        known = src.frames if src is not None else 0
        if task.kind == "continue":
            known = min(known, fa)
        ctx_frames = int(round(self.context_seconds * sr / ratio))
        wa, wb = context_window(fa, fb, known, self.cfg.max_latents, ctx_frames, right=task.kind == "inpaint")
        keep_np = keep_mask(wa, wb, frames, known)
        known_lat = torch.zeros(self.cfg.vae.latent_dim, wb - wa)
        if keep_np.any():
            ctx.progress(0.05, "encode")
            known_lat = self.cache.window(src, wa, keep_np, ctx.check, open_edges=True)
        keep = torch.from_numpy(keep_np)[None, None]
        lat = self._sample(task, ctx, known_lat, keep, (wb - wa) * ratio / sr)
        ctx.progress(0.9, "decode")
        da, db = max(fa - 1, wa), min(fb + 1, wb)            # +1 frame each side for the level match
        audio = self._decode(lat, wa, wb, da, db)             # (V, 2, (db - da) * ratio)
        model_regions = [(a * sr / task.sr, (a + n) * sr / task.sr) for a, n in regions]
        outs = []
        for y in audio:
            if src is not None:
                m = outside_mask(da * ratio, y.shape[-1], model_regions, src.n_real)
                idx = np.flatnonzero(m)
                y = y * level_gain(y[:, idx], src.audio[:, da * ratio + idx])
            outs.append(from_model_rate(y, da * ratio, sr, task.sr, task.start_sample, task.frames, task.channels))
        return outs

    def _chunked(self, task: Task, a: int, n_total: int, ctx: JobContext) -> list[np.ndarray]:
        """A region longer than the model's window: fill left to right, each chunk continuing the last.
        Returns per variation (channels, n_total), joined to the source."""
        ctx_frames = int(round(self.context_seconds * self.sr / self.ratio))
        chunk_frames = self.cfg.max_latents - 3 - min(ctx_frames, self.cfg.max_latents // 2)
        step = int(chunk_frames * self.ratio / self.sr * task.sr)
        if step < task.sr // 100:
            raise SegueError("internal", "model window too short for chunked generation")
        audio = task.audio if task.audio is not None else np.zeros((task.channels, 0), np.float32)
        before = audio[:, :a]
        outs = None
        pos = 0
        while pos < n_total:
            n = min(step, n_total - pos)
            last = pos + n >= n_total
            results = []
            for k in range(task.variations):
                prev = before if outs is None else np.concatenate([before, outs[k]], axis=1)
                if last and task.kind == "inpaint":
                    full = np.concatenate([prev, audio[:, a + pos + n:]], axis=1)
                    sub = Task("inpaint", task.sr, task.channels, a + pos, n, full, task.grid,
                               task.prompt, task.seed + k + pos, 1, None)
                elif prev.shape[-1] == 0:
                    sub = Task("generate", task.sr, task.channels, 0, n, None, task.grid, task.prompt,
                               task.seed + k, 1, None)
                else:
                    sub = Task("continue", task.sr, task.channels, prev.shape[-1], n, prev, task.grid,
                               task.prompt, task.seed + k + pos, 1, None)
                sub_src = self.cache.source(None, sub.audio, sub.sr) if sub.kind != "generate" else None
                # progress is the chunk count; the sub-edit only checks cancel and timeout
                sub_ctx = JobContext(cancelled=lambda: (ctx.check(), False)[1])
                results.append(self._edit(sub, sub_src, sub_ctx)[0])
            outs = results if outs is None else [np.concatenate([o, r], axis=1) for o, r in zip(outs, results)]
            pos += n
            ctx.progress(0.05 + 0.9 * pos / n_total, f"chunk {pos / task.sr:.1f}/{n_total / task.sr:.1f} s")
        return outs

    # ------------------------------------------------------------ sampling
    def _sample(self, task: Task, ctx: JobContext, known: torch.Tensor, keep: torch.Tensor, seconds: float):
        prompt = self.prompt_for(task)
        ctx.progress(0.07, "text")
        emb = self.text.embed([prompt]).to(self.device)                       # (1, L, 768)
        sec = self.model.seconds([seconds], device=self.device).float()        # (1, 1, 768)
        cross, glob = torch.cat([emb, sec], dim=1), sec[:, 0]
        seeds = [task.seed + k for k in range(task.variations)]
        outs = runtime.run_batched(seeds, lambda chunk: self._sample_batch(chunk, cross, glob, known, keep, ctx),
                                   self.device, ctx.notes)
        return torch.cat(outs)

    @torch.inference_mode()
    def _sample_batch(self, seeds, cross, glob, known, keep, ctx):
        b, dev = len(seeds), self.device
        T = known.shape[-1]
        gens = [torch.Generator().manual_seed(int(s) % (2 ** 63)) for s in seeds]
        shape = (self.cfg.dit.io_channels, T)

        def noise(_like=None):
            return torch.stack([torch.randn(shape, generator=g) for g in gens]).to(dev)

        x = noise()
        known_b = known[None].expand(b, -1, -1).to(dev)
        keep_d = keep.to(dev)
        crossb, globb = cross.expand(b, -1, -1), glob.expand(b, -1)
        prepared = self.model.dit.prepare(crossb, self.cfg_scale)          # cross-attention k, v once
        model = lambda xx, tt: self._dit_fn(xx, tt, crossb, globb, cfg_scale=self.cfg_scale, prepared=prepared).float()
        has_known = bool(keep.any())
        ctx.progress(0.1, "generate")      # the stage timings count the steps from here
        return sample_pingpong(model, x, rf_schedule(self.steps), noise=noise,
                               known=known_b if has_known else None, keep=keep_d if has_known else None,
                               callback=lambda k, n: ctx.step(k, n, lo=0.1, hi=0.88))

    @torch.inference_mode()
    def _decode(self, lat: torch.Tensor, wa: int, wb: int, da: int, db: int) -> np.ndarray:
        m = self.dec_margin
        sa, sb = max(da - m, wa), min(db + m, wb)
        y = self.model.vae.decode(lat[:, :, sa - wa: sb - wa])
        off = (da - sa) * self.ratio
        return y[:, :, off: off + (db - da) * self.ratio].float().cpu().numpy()
