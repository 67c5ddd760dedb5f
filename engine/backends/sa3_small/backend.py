"""`sa3-small`: Stable Audio 3 small serving inpaint, continue and generate with its native mask.

The model (engine/backends/sa3_small/{model,dit,same,conditioner,sampler,loading}.py) is
conditioned on a mask over latent frames (1 keep, 0 generate) and the kept latents
(the 257-channel local conditioning). How a request runs (44.1 kHz stereo inside; the
shared pieces are engine/backends/neural/):

1. Regions become latent frames (4096 samples each), snapped outward so every
   sample of a region is generated.
2. The window (option `window`):
   - "short" (default): the regions plus `context_seconds` of source each side
     (one side's unused share given to the other), an even number of frames,
     every frame valid, seconds_total = the window's length. Fast: the DiT cost
     grows with the window.
   - "official": the official generate path's canvas: the whole output duration D
     (inpaint: the whole file; continue: `at` + the new audio) plus 6 s, rounded to
     even frames, seconds_total = D, frames past D generated and masked as padding
     the way the official code does. Slower, the distribution the model was trained on.
   Generate always uses the official canvas for its length (only the frames needed).
3. Kept frames come from the per-file latent cache (a new region in a file already
   seen encodes only frames no earlier edit encoded; the rest of the file is encoded
   while the engine is idle).
4. 8 ping-pong steps (LogSNRShift schedule), each variation with its own generator
   seeded seed + k (initial noise, per-step noise, decoder noise: a variation does
   not depend on the batch size). Progress per step; cancel takes effect at the next.
5. Only the regions' frames (+1 each side for the level match, + 2 frames of
   decoder context) are decoded, level-matched to the source, resampled to the
   project rate and pasted into the source: everything outside the regions is the
   source, bit-identical; each region's edges fade from an AR extrapolation of the
   source with an equal-power crossfade (neural/paste.py).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from ...cache import ByteCache
from ...errors import SegueError
from ..base import Backend, BackendConfig, Capabilities, JobContext, Task
from ..neural import hub, runtime
from ..neural.prefetch import IdlePrefetcher
from ..neural.latent_cache import LatentCache, SourceLatents
from ..neural.paste import (bend_into, fade_length, from_model_rate, level_gain, outside_mask, paste_regions,
                           warm_paste)
from ..neural.prompt import with_tempo
from ..neural.window import (align_window, context_window, group_regions, keep_mask, official_canvas_frames,
                             snap, union, valid_frames)
from .conditioner import t5gemma_files_missing
from .loading import T5GEMMA_SUBFOLDER, load_sa3

MUSIC_REPO = "stabilityai/stable-audio-3-small-music"
SFX_REPO = "stabilityai/stable-audio-3-small-sfx"
ALIASES = {"sa3-small-music": MUSIC_REPO, "sa3-small-sfx": SFX_REPO, "music": MUSIC_REPO, "sfx": SFX_REPO}
WINDOWS = ("short", "official")
PAD_SECONDS = 6.0          # the official duration padding
MAX_OUTPUT_SECONDS = 120.0  # the official maximum duration (the canvas holds 120 s + 6 s of padding)
CODEC_MARGIN = 2           # SAME-S: chunks of 2 frames, shifted once: 2 frames each side make a slice exact


def resolve_model_dir(spec: str | None) -> Path:
    """A Stable Audio 3 small folder: a path, HF cache folder, repo id or `sa3-small-music` / `-sfx`."""
    # the pull hint names the model asked for (the command in backticks, runnable as shown)
    pull = "segue models pull sa3-small-sfx" if spec in ("sa3-small-sfx", "sfx", SFX_REPO) else "segue models pull sa3-small-music"
    spec = ALIASES.get(spec or "", spec)
    return hub.locate(spec, MUSIC_REPO, need=["model_config.json"], what="Stable Audio 3 small model", pull=pull)


class Sa3SmallBackend(Backend):
    name = "sa3-small"

    def __init__(self, config: BackendConfig | None = None):
        super().__init__(config)
        x = self.config.extra or {}
        self.steps = int(x.get("steps", 8))
        self.cfg_scale = float(x.get("cfg_scale", 1.0))
        self.window = str(x.get("window", "short"))
        if self.window not in WINDOWS:
            raise SegueError("bad_option", f"window={self.window}: use {' or '.join(WINDOWS)}")
        self.context_seconds = float(x.get("context_seconds", 2.0))       # each side, window "short"
        self.continue_context_seconds = float(x.get("continue_context_seconds", 4.0))
        self.crossfade_seconds = max(0.005, float(x.get("crossfade_seconds", 0.02)))
        self.decode_noise = bool(x.get("decode_noise", True))             # the official decoder is stochastic
        self.ae_precision = str(x.get("ae_precision", "fp32"))            # SAME-S: fp16/bf16 cancel in diff. attention
        self.text_precision = str(x.get("text_precision", "auto"))        # T5Gemma: auto = bf16 beside a bf16 DiT
        self.compile = x.get("compile", "auto")
        self.compile_backend = x.get("compile_backend")
        self.threads = x.get("threads")
        self.warmup = bool(x.get("warmup", True))
        self.prefetch = bool(x.get("prefetch", True))
        # seconds of idle before the prefetch starts: a re-roll fired right after a reply must not wait
        # behind a prefetch chunk (~0.8 s for 16 frames + margins on 2 cores)
        self.prefetch_delay = float(x.get("prefetch_delay", 1.0))
        self.cache_bytes = int(float(x.get("latent_cache_mb", 512)) * (1 << 20))
        self.model = None
        self.cache: LatentCache | None = None
        self.load_seconds = 0.0
        self._prompts = ByteCache(64 << 20)

    # ------------------------------------------------------------ loading
    def load(self) -> None:
        t0 = time.perf_counter()
        self.device = runtime.pick_device(self.config.device)
        self.dit_dtype, _ = runtime.pick_dtypes(self.config.precision, self.device)
        self.ae_dtype, _ = runtime.pick_dtypes(self.ae_precision, self.device)
        runtime.set_threads(self.threads)
        folder = resolve_model_dir(self.config.model)
        self.model_dir = folder
        if _model_type(folder) == "diffusion_cond":
            raise SegueError("model_invalid", f"{folder} holds a Stable Audio Open model (model_type diffusion_cond), "
                             "not Stable Audio 3: serve it with --backend sao-small")
        if self.config.text_encoder:
            t5 = hub.locate(self.config.text_encoder, "google/t5gemma-b-b-ul2", what="T5Gemma text encoder",
                            code="text_encoder_missing")
        else:
            t5 = folder / T5GEMMA_SUBFOLDER
            missing = t5gemma_files_missing(t5)
            if missing:
                raise SegueError("text_encoder_missing", f"the T5Gemma text encoder is incomplete: {t5} lacks "
                                 f"{', '.join(missing)}; it ships in the {T5GEMMA_SUBFOLDER} subfolder of the SA3 "
                                 "repo (segue models pull sa3-small-music), or pass --text-encoder FOLDER")
        self.model = load_sa3(folder, "cpu", self.dit_dtype, self.ae_dtype, text_encoder=False)
        self.text_dtype = text_dtype(self.text_precision, self.dit_dtype, self.device)
        self.model.prompt.load_encoder(t5, self.device, self.text_dtype)
        self.model.to(self.device)
        self.t5_dir = t5
        self.cfg = self.model.cfg
        self.sr = self.cfg.sample_rate
        self.hop = self.cfg.ae.downsampling_ratio
        self.align = self.cfg.latent_align
        self.cap = self.cfg.max_latents
        self.cache = LatentCache(self._encode, self.hop, self.cfg.ae.latent_dim, CODEC_MARGIN, self.sr,
                                 channels=self.cfg.audio_channels, align=self.align, max_bytes=self.cache_bytes)
        self._dit_fn = runtime.CompileOrEager(self.model.dit, enabled=runtime.compile_wanted(self.compile, self.device),
                                              backend=self.compile_backend)
        if self.warmup:
            self._warm()
        self.prefetcher = IdlePrefetcher(self.cache, chunk=16, delay=self.prefetch_delay, name="sa3-prefetch",
                                         enabled=self.prefetch)
        self.prefetcher.start()
        self.load_seconds = time.perf_counter() - t0

    def _encode(self, audio: torch.Tensor) -> torch.Tensor:
        return self.model.encode(audio.to(self.device))

    @torch.inference_mode()
    def _warm(self) -> None:
        """Touch every part once so the first request does not pay for first-use costs."""
        n = 2 * self.align
        io = self.cfg.dit.io_channels
        cond = self._condition("", n * self.hop / self.sr)
        x = torch.zeros(1, io, n, device=self.device)
        local = torch.zeros(1, io + 1, n, device=self.device)
        self._dit_fn(x, torch.ones(1, device=self.device), cond[0], cond[1], local, None,
                     prepared=self.model.dit.prepare(cond[0], local))
        z = self.model.encode(torch.zeros(1, self.cfg.audio_channels, n * self.hop, device=self.device))
        self.model.decode(z, noise=False)
        warm_paste(self.sr)                 # the seam's first use (scipy.signal import), ~0.4-1 s

    def close(self) -> None:
        if getattr(self, "prefetcher", None) is not None:
            self.prefetcher.close()

    def capabilities(self) -> Capabilities:
        return Capabilities(inpaint=True, continue_=True, generate=True, uses_prompt=True, native_sr=44100,
                            # None: the whole source (the per-file latent cache indexes the whole
                            # file; the window policy picks the canvas inside it)
                            max_context_seconds=None,
                            max_output_seconds=MAX_OUTPUT_SECONDS, request_options=frozenset({"window"}))

    def info(self) -> dict:
        dev = getattr(self, "device", None)
        d = {"device": str(dev or "cpu"), "dtype": runtime.dtype_name(getattr(self, "dit_dtype", torch.float32))}
        if self.model is not None:
            d.update(ae_dtype=runtime.dtype_name(self.ae_dtype), text_dtype=runtime.dtype_name(self.text_dtype),
                     window=self.window, steps=self.steps,
                     weights_bytes=runtime.weights_bytes(self.model), parameters=self.model.part_sizes(),
                     model_dir=str(self.model_dir), text_encoder=str(self.t5_dir),
                     load_seconds=round(self.load_seconds, 2), dit=self._dit_fn.mode, threads=torch.get_num_threads(),
                     latent_cache_bytes=self.cache.store.current_bytes)
        d.update(runtime.memory_info(dev))
        return d

    # ------------------------------------------------------------ requests
    def inpaint(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        return self._request(task, ctx)

    def continue_(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        return self._request(task, ctx)

    def generate(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        return self._request(task, ctx)

    def _request(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        if self.model is None:
            raise SegueError("internal", "sa3-small backend used before load()")
        if task.frames / task.sr > MAX_OUTPUT_SECONDS + 1e-9:
            raise SegueError("too_long", f"{task.frames / task.sr:.1f} s asked; sa3-small makes at most "
                             f"{MAX_OUTPUT_SECONDS:g} s in one request")
        window = str(task.options.get("window", self.window)) if task.options else self.window
        if window not in WINDOWS:
            raise SegueError("bad_option", f"window={window}: use {' or '.join(WINDOWS)}")
        ctx.progress(0.02, "prepare")
        with self.prefetcher.request(task, self._frames_of) as src:
            return self._run(task, src, window, ctx)

    def prompt_for(self, task: Task) -> str:
        return with_tempo(task.prompt, task.grid)

    def _condition(self, prompt: str, seconds_total: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(cross (1, 257, 768), glob (1, 768)) on the device; T5Gemma runs once per prompt."""
        emb = self._prompts.get_or_make(prompt, lambda: self.model.prompt([prompt])[0].float().cpu())
        c = self.model.condition_embeddings(emb.to(self.device), [seconds_total])
        return c.cross, c.glob

    # ------------------------------------------------------------ windows
    def _frames_of(self, task: Task, a: int, n: int) -> tuple[int, int]:
        return snap(a * self.sr / task.sr, (a + n) * self.sr / task.sr, self.hop)

    def _plan(self, task: Task, src: SourceLatents | None, group: list[tuple[int, int]], window: str):
        """-> (wa, wb, known, seconds_total, valid): the canvas [wa, wb) in latent frames, frames of known
        source below `known`, the seconds_total condition and the valid-frame count (None: all valid)."""
        fa, fb = union(group)
        known = src.frames if src is not None else 0
        if task.kind == "continue":
            known = min(known, fa)
        if window == "official":
            # the whole output from the start of the file: inpaint = the file; continue = up to at + new audio
            end_sample = (task.start_sample + task.frames) * self.sr / task.sr
            if task.kind == "inpaint" and src is not None:
                end_sample = max(end_sample, src.n_real)
            duration = end_sample / self.sr
            frames = official_canvas_frames(duration, self.sr, self.hop, PAD_SECONDS, self.cfg.sample_size)
            if frames >= fb:
                valid = min(valid_frames(duration, self.sr, self.hop) + int(PAD_SECONDS * self.sr / self.hop), frames)
                return 0, frames, min(known, int(math.ceil(end_sample / self.hop))), duration, valid
            # longer than the model's canvas: the largest window around the regions instead
            ctx_frames = self.cap
        else:
            ctx_frames = int(round((self.context_seconds if task.kind == "inpaint" else self.continue_context_seconds)
                                   * self.sr / self.hop))
        wa, wb = context_window(fa, fb, known, self.cap - self.align, ctx_frames, right=task.kind == "inpaint")
        wa, wb = align_window(wa, wb, self.align, lo=0)
        return wa, wb, known, (wb - wa) * self.hop / self.sr, None

    def _run(self, task: Task, src: SourceLatents | None, window: str, ctx: JobContext) -> list[np.ndarray]:
        if task.kind == "generate":
            return self._generate(task, ctx)
        regions = task.regen_regions() if task.kind == "inpaint" else [(task.start_sample, task.frames)]
        frames = [self._frames_of(task, a, n) for a, n in regions]
        by_frames = dict(zip(frames, regions))
        ys = [np.zeros((task.channels, task.frames), np.float32) for _ in range(task.variations)]
        groups = group_regions(frames, self.cap - 2 * self.align - 2)
        for gi, group in enumerate(groups):
            regs = [by_frames[f] for f in group]
            outs = self._window_edit(task, src, regs, group, window, ctx, (gi, len(groups)))
            for y, o in zip(ys, outs):
                for a, n in regs:
                    r0 = a - task.start_sample
                    y[:, r0:r0 + n] = o[:, r0:r0 + n]
        if task.kind == "inpaint":
            return [paste_regions(y, task.audio, task.start_sample, regions, self.crossfade_seconds, task.sr)
                    for y in ys]
        fade = fade_length(self.crossfade_seconds, task.sr, task.frames)
        return [bend_into(y, task.audio, fade) for y in ys]

    def _window_edit(self, task: Task, src: SourceLatents | None, regions: list[tuple[int, int]],
                     frames: list[tuple[int, int]], window: str, ctx: JobContext,
                     part: tuple[int, int]) -> list[np.ndarray]:
        """One canvas holding `regions` -> per variation (channels, task.frames), valid inside the regions."""
        wa, wb, known, seconds_total, valid = self._plan(task, src, frames, window)
        mask_np = keep_mask(wa, wb, frames, known)            # frames past the known source are generated too
        latents = torch.zeros(self.cfg.ae.latent_dim, wb - wa)
        if mask_np.any():
            ctx.progress(0.04, "encode")
            latents = self.cache.window(src, wa, mask_np, ctx.check, open_edges=True)
        mask = torch.from_numpy(mask_np)
        keep = None if valid is None else (torch.arange(wb - wa) < valid)
        ctx.progress(0.06, "text")
        cross, glob = self._condition(self.prompt_for(task), seconds_total)
        seeds = [task.seed + k for k in range(task.variations)]
        fa, fb = union(frames)
        da, db = max(fa - 1, wa), min(fb + 1, wb)              # +1 frame each side for the level match
        lo, hi = 0.08 + 0.85 * part[0] / part[1], 0.08 + 0.85 * (part[0] + 1) / part[1]

        def batch(chunk):
            return self._sample_decode(chunk, cross, glob, latents, mask, keep, (wa, wb, da, db), seconds_total,
                                       ctx, lo, hi)

        audio = [y for out in runtime.run_batched(seeds, batch, self.device, ctx.notes) for y in out]
        model_regions = [(a * self.sr / task.sr, (a + n) * self.sr / task.sr) for a, n in regions]
        outs = []
        for y in audio:
            if src is not None:
                m = outside_mask(da * self.hop, y.shape[-1], model_regions, min(src.n_real, known * self.hop))
                idx = np.flatnonzero(m)
                y = y * level_gain(y[:, idx], src.audio[:, da * self.hop + idx])
            outs.append(from_model_rate(y, da * self.hop, self.sr, task.sr, task.start_sample, task.frames,
                                        task.channels))
        return outs

    @torch.inference_mode()
    def _sample_decode(self, seeds, cross, glob, latents, mask, keep, span, seconds_total, ctx, lo,
                       hi) -> list[np.ndarray]:
        """Sample the canvas [wa, wb) for `seeds` (one generator each) and decode frames [da, db):
        -> per seed (2, (db - da) * hop) float32 at the model rate, clamped to [-1, 1].
        The cross-attention keys/values and the local embeddings are computed once (DiT.prepare)."""
        wa, wb, da, db = span
        b, n, dev = len(seeds), wb - wa, self.device
        io = self.cfg.dit.io_channels
        gens = [torch.Generator().manual_seed(int(s) % (2 ** 63)) for s in seeds]

        def draw():
            return torch.stack([torch.randn((io, n), generator=g) for g in gens]).to(dev)

        x = draw()                          # the trajectory stays fp32; the DiT casts its input
        m = mask.to(dev)[None, None].expand(b, 1, n)
        local = torch.cat([m, (latents.to(dev) * mask.to(dev))[None].expand(b, -1, -1)], dim=1)
        keep_b = None if keep is None else keep.to(dev)[None].expand(b, n)
        crossb, globb = cross.expand(b, -1, -1), glob.expand(b, -1)
        prepared = self.model.dit.prepare(crossb, local, self.cfg_scale)
        sigmas = self.model.schedule(self.steps, seconds_total, frames=n).float()
        ones = x.new_ones([b])
        ctx.progress(lo, "generate")      # the stage timings count the steps from here
        for i in range(self.steps):
            t, t_next = sigmas[i], sigmas[i + 1]
            v = self._dit_fn(x, t * ones, None, globb, None, keep_b, cfg_scale=self.cfg_scale, prepared=prepared)
            x = (1 - t_next) * (x - t * v.float()) + t_next * draw()
            ctx.step(i + 1, self.steps, lo=lo, hi=hi - 0.08 * (hi - lo))
        ctx.progress(hi - 0.05 * (hi - lo), "decode")
        # decode the regions' frames with CODEC_MARGIN frames of context, on the codec's chunk grid
        sa = max(wa + ((da - CODEC_MARGIN - wa) // self.align) * self.align, wa)
        sb = min(db + CODEC_MARGIN, wb)
        sb = min(sa + -(-(sb - sa) // self.align) * self.align, wb)
        out = []
        for k, g in enumerate(gens):
            y = self.model.decode(x[k:k + 1, :, sa - wa: sb - wa].float(), generator=g, noise=self.decode_noise)
            off = (da - sa) * self.hop
            out.append(y[0, :, off: off + (db - da) * self.hop].clamp(-1, 1).cpu().numpy())
        return out

    # ------------------------------------------------------------ generate
    def _generate(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        """Variable length as the official path: canvas = (D + 6 s) in even frames, padding mask, cut to D."""
        seconds = task.frames / task.sr
        n = official_canvas_frames(seconds, self.sr, self.hop, PAD_SECONDS, self.cfg.sample_size)
        valid = min(valid_frames(seconds, self.sr, self.hop) + int(PAD_SECONDS * self.sr / self.hop), n)
        keep = torch.arange(n) < valid
        mask = torch.zeros(n)
        latents = torch.zeros(self.cfg.ae.latent_dim, n)
        cross, glob = self._condition(self.prompt_for(task), seconds)
        need = min(valid_frames(seconds, self.sr, self.hop), n)
        seeds = [task.seed + k for k in range(task.variations)]

        def batch(chunk):
            return self._sample_decode(chunk, cross, glob, latents, mask, keep, (0, n, 0, need), seconds, ctx,
                                       0.08, 0.95)

        audio = [y for out in runtime.run_batched(seeds, batch, self.device, ctx.notes) for y in out]
        return [from_model_rate(y, 0, self.sr, task.sr, 0, task.frames, task.channels) for y in audio]


def text_dtype(precision: str, dit_dtype: torch.dtype, device: torch.device) -> torch.dtype:
    """T5Gemma's dtype for `text_precision` (auto | fp32 | bf16 | fp16). auto: bf16 when the DiT runs in
    bf16, else fp32. Gemma models are trained in bf16, the embeddings feed the DiT's bf16
    cross-attention anyway and the 256k-token embedding table takes half the memory; on the full-size
    stand-in (2 CPU cores) a prompt takes 0.04 s instead of 0.08 s, 1.5% relative difference
    (docs/sa3-small.md). fp32 beside an fp16 DiT: Gemma's activations overflow fp16.
    Raises SegueError("bad_precision")."""
    if (precision or "auto").lower() == "auto":
        return torch.bfloat16 if dit_dtype == torch.bfloat16 else torch.float32
    return runtime.pick_dtypes(precision, device)[0]


def _model_type(folder: Path) -> str | None:
    """model_config.json's model_type (None when unreadable: the loader then names the problem)."""
    try:
        import json

        return json.loads((folder / "model_config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None
