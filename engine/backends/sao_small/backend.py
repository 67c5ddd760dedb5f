"""`sao-small`: Stable Audio Open Small serving inpaint, continue and generate.

How an edit runs (all at the model's 44.1 kHz, stereo):
1. The region is snapped outward to latent frames (2048 samples). A context
   window of latent frames is chosen around it (at most the model's ~11.9 s),
   `context_seconds` each side, giving one side's unused share to the other.
2. Latents of the known frames come from a per-source cache (keyed by file
   content and rate); missing frames are encoded alone with the encoder's
   receptive field as margin, so nothing else in the file is encoded.
3. Ping-pong sampling with latent blending: after every step the frames outside
   the region are reset to the clean latent noised to the next t.
4. Only the region's frames (+1 each side, + the decoder's receptive field) are
   decoded, level-matched to the source (RMS over the neighbouring frames,
   gain clamped to [0.25, 4]), resampled to the task rate and pasted with an
   equal-power crossfade (>= 20 ms) at each edge that has source audio; a
   continuation's first samples are bent to continue the source's last sample.
Variations are one batch with seeds seed + k (per-row generators, so a
variation does not depend on the batch size), halved on out-of-memory.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ...audio_io import resample
from ...seams import join_source
from ...errors import SegueError
from ..base import Backend, BackendConfig, Capabilities, JobContext, Task
from .conditioners import TextEncoder, load_text_encoder
from .loading import hf_cache_dir, load_model, repo_cache_folder, resolve_model_dir, _snapshot
from .oobleck import decoder_margin, encoder_margin
from .sampler import rf_schedule, sample_pingpong

T5_REPOS = ("google-t5/t5-base", "t5-base")


# ---------------------------------------------------------------- device and precision

def pick_device(spec: str | None) -> torch.device:
    if spec in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError as e:
        raise SegueError("bad_device", f"unknown device {spec!r}: {e}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SegueError("bad_device", f"device {spec} asked but torch sees no CUDA GPU")
    return dev


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def pick_dtypes(precision: str, device: torch.device) -> tuple[torch.dtype, torch.dtype]:
    """(DiT dtype, VAE dtype). auto: bf16 where the hardware does bf16 math, else fp32 (fp16 VAE on old GPUs)."""
    p = (precision or "auto").lower()
    table = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
             "fp16": torch.float16, "float16": torch.float16}
    if p in table:
        dt = table[p]
        if dt == torch.float16 and device.type == "cpu":
            raise SegueError("bad_precision", "fp16 is not supported on the CPU; use bf16 or fp32")
        return dt, dt
    if p != "auto":
        raise SegueError("bad_precision", f"precision {precision!r}: use auto, fp32, bf16 or fp16")
    if device.type == "cuda":
        return (torch.bfloat16, torch.bfloat16) if torch.cuda.is_bf16_supported() else (torch.float16, torch.float16)
    return (torch.bfloat16, torch.bfloat16) if cpu_has_bf16() else (torch.float32, torch.float32)


def resolve_text_encoder(spec: str | None, model_dir: Path) -> Path:
    """--text-encoder folder, else `t5-base` beside the model, else the HF cache."""
    def complete(p: Path) -> bool:
        has_weights = any((p / n).exists() for n in ("model.safetensors", "pytorch_model.bin"))
        has_tok = any((p / n).exists() for n in ("tokenizer.json", "spiece.model"))
        return (p / "config.json").exists() and has_weights and has_tok

    if spec:
        p = Path(spec).expanduser()
        if p.is_dir() and (p / "snapshots").is_dir():
            p = _snapshot(p) or p
        if not p.is_dir():
            raise SegueError("text_encoder_missing", f"text encoder folder {spec} does not exist")
        if not complete(p):
            raise SegueError("text_encoder_missing", f"{p} is not a complete t5-base folder: it needs config.json, "
                             "model.safetensors (or pytorch_model.bin) and tokenizer.json (or spiece.model)")
        return p
    for cand in (model_dir / "t5-base", model_dir.parent / "t5-base"):
        if cand.is_dir() and complete(cand):
            return cand
    for repo in T5_REPOS:
        folder = repo_cache_folder(repo)
        snap = _snapshot(folder) if folder.is_dir() else None
        if snap is not None and complete(snap):
            return snap
    raise SegueError("text_encoder_missing", "the t5-base text encoder was not found: pass --text-encoder FOLDER, "
                     f"put it in {model_dir / 't5-base'}, or run `segue models pull sao-small` "
                     f"(it fetches google-t5/t5-base into {hf_cache_dir()})")


# ---------------------------------------------------------------- per-source caches

@dataclass
class _SourceLatents:
    audio: np.ndarray          # (2, frames * 2048) at 44.1 kHz, zero-padded
    n_real: int                # samples of real audio in `audio`
    latents: torch.Tensor      # (64, frames) float32
    have: torch.Tensor         # (frames,) bool


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of True."""
    out, i, n = [], 0, len(mask)
    while i < n:
        if mask[i]:
            j = i
            while j < n and mask[j]:
                j += 1
            out.append((i, j))
            i = j
        else:
            i += 1
    return out


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
        self.warmup = bool(x.get("warmup", True))
        self.model = None
        self.text: TextEncoder | None = None
        self._sources: OrderedDict[tuple, _SourceLatents] = OrderedDict()
        self._source_cache_size = int(x.get("source_cache", 8))
        self.load_seconds = 0.0

    # ------------------------------------------------------------ loading
    def load(self) -> None:
        t0 = time.perf_counter()
        self.device = pick_device(self.config.device)
        self.dit_dtype, self.vae_dtype = pick_dtypes(self.config.precision, self.device)
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
        self._maybe_compile()
        if self.warmup:
            self._warm()
        self.load_seconds = time.perf_counter() - t0

    def _maybe_compile(self) -> None:
        """torch.compile the DiT on CUDA (fixed shapes repeat across steps); CPU runs eager by default."""
        want = self.compile
        if want == "auto":
            want = self.device.type == "cuda"
        self._dit_fn = self.model.dit
        if want:
            try:
                self._dit_fn = torch.compile(self.model.dit, dynamic=True)
            except Exception:
                self._dit_fn = self.model.dit

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

    def _need_loaded(self) -> None:
        if self.model is None:
            raise SegueError("internal", "sao-small backend used before load()")

    def capabilities(self) -> Capabilities:
        max_s = 524288 / 44100 if self.model is None else self.cfg.max_seconds
        return Capabilities(inpaint=True, continue_=True, generate=True, uses_prompt=True, native_sr=44100,
                            max_context_seconds=max_s, max_output_seconds=None)

    def info(self) -> dict:
        d = {"device": str(getattr(self, "device", "cpu")), "dtype": str(getattr(self, "dit_dtype", "")).replace("torch.", "")}
        if self.model is not None:
            d["vae_dtype"] = str(self.vae_dtype).replace("torch.", "")
            d["weights_bytes"] = int(sum(t.numel() * t.element_size() for t in self.model.state_dict().values()))
            d["parameters"] = self.model.part_sizes()
            d["model_dir"] = str(self.model_dir)
            d["text_encoder"] = str(self.t5_dir)
            d["load_seconds"] = round(self.load_seconds, 2)
        try:
            import resource

            d["rss_bytes"] = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
        except Exception:
            pass
        if getattr(self, "device", None) is not None and self.device.type == "cuda":
            d["cuda_allocated_bytes"] = int(torch.cuda.memory_allocated(self.device))
            d["cuda_total_bytes"] = int(torch.cuda.get_device_properties(self.device).total_memory)
        return d

    # ------------------------------------------------------------ requests
    def inpaint(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        return self._edit(task, ctx, right_context=True)

    def continue_(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        return self._edit(task, ctx, right_context=False)

    def generate(self, task: Task, ctx: JobContext) -> list[np.ndarray]:
        return self._edit(task, ctx, right_context=False)

    # ------------------------------------------------------------ the edit
    def prompt_for(self, task: Task) -> str:
        text = (task.prompt or "").strip()
        if task.grid is not None:
            bpm = f"{task.grid.bpm:g} BPM"
            text = f"{text}, {bpm}" if text else bpm
        return text

    def _source(self, task: Task) -> _SourceLatents | None:
        if task.audio is None or task.audio.shape[-1] == 0:
            return None
        key = (task.source_key, task.sr, task.kind == "continue" and task.start_sample) if task.source_key else None
        if key is not None and key in self._sources:
            self._sources.move_to_end(key)
            return self._sources[key]
        a = np.asarray(task.audio, dtype=np.float32)
        a = np.repeat(a, 2, axis=0) if a.shape[0] == 1 else a[:2]
        a = resample(a, task.sr, self.sr)
        frames = math.ceil(a.shape[-1] / self.ratio)
        n_real = a.shape[-1]
        a = np.pad(a, ((0, 0), (0, frames * self.ratio - a.shape[-1])))
        src = _SourceLatents(a, n_real, torch.zeros(self.cfg.vae.latent_dim, frames), torch.zeros(frames, dtype=torch.bool))
        if key is not None:
            self._sources[key] = src
            while len(self._sources) > self._source_cache_size:
                self._sources.popitem(last=False)
        return src

    @torch.inference_mode()
    def _latents(self, src: _SourceLatents, fa: int, fb: int) -> torch.Tensor:
        """Latent frames [fa, fb) of the source, encoding only the missing ones (+ receptive field)."""
        need = ~src.have[fa:fb].numpy()
        m, total = self.enc_margin, src.latents.shape[-1]
        for r0, r1 in _runs(need):
            r0, r1 = r0 + fa, r1 + fa
            s0, s1 = max(r0 - m, 0), min(r1 + m, total)
            audio = torch.from_numpy(src.audio[None, :, s0 * self.ratio: s1 * self.ratio]).to(self.device)
            z = self.model.vae.encode(audio)[0].float().cpu()
            src.latents[:, r0:r1] = z[:, r0 - s0: r1 - s0]
            src.have[r0:r1] = True
        return src.latents[:, fa:fb]

    def _window(self, fa: int, fb: int, known_frames: int, right_context: bool) -> tuple[int, int]:
        """Latent window [wa, wb) around region frames [fa, fb): context each side, the unused share moved."""
        cap = self.cfg.max_latents
        ctx = int(round(self.context_seconds * self.sr / self.ratio))
        free = max(cap - (fb - fa), 0)
        before_avail = fa
        after_avail = max(known_frames - fb, 0) if right_context else 0
        before = min(before_avail, ctx, free)
        after = min(after_avail, ctx, free - before)
        spare = min(2 * ctx, free) - before - after   # give one side's unused share to the other
        if spare > 0:
            more = min(before_avail - before, spare)
            before += more
            after += min(after_avail - after, spare - more)
        return fa - before, fb + after

    def _edit(self, task: Task, ctx: JobContext, right_context: bool) -> list[np.ndarray]:
        self._need_loaded()
        ctx.progress(0.02, "prepare")
        src = self._source(task)
        ratio, sr = self.ratio, self.sr
        # region in 44.1 kHz samples
        a44 = task.start_sample * sr / task.sr
        b44 = (task.start_sample + task.frames) * sr / task.sr
        fa, fb = int(math.floor(a44 / ratio)), int(math.ceil(b44 / ratio))
        known = src.latents.shape[-1] if src is not None else 0
        if task.kind == "continue":
            known = min(known, fa)
        cap = self.cfg.max_latents
        # 1 frame each side for level matching; the region itself must fit the window
        if fb - fa > cap - (2 if known else 0):
            return self._chunked(task, ctx, right_context)
        wa, wb = self._window(fa, fb, known, right_context)
        keep = torch.zeros(1, 1, wb - wa)
        known_lat = torch.zeros(self.cfg.vae.latent_dim, wb - wa)
        if src is not None and known > 0:
            ctx.progress(0.05, "encode")
            left = (wa, min(fa, known))
            right = (fb, min(wb, known)) if right_context else (0, 0)
            for s, e in (left, right):
                if e > s:
                    known_lat[:, s - wa: e - wa] = self._latents(src, s, e)
                    keep[..., s - wa: e - wa] = 1
        lat = self._sample(task, ctx, known_lat, keep, (wb - wa) * ratio / sr)
        ctx.progress(0.9, "decode")
        # decode region + 1 frame each side inside the window, plus the receptive field
        da, db = max(fa - 1, wa), min(fb + 1, wb)
        audio44 = self._decode(lat, wa, wb, da, db)       # (V, 2, (db - da) * ratio)
        return [self._paste(task, src, y, da * ratio) for y in audio44]

    def _chunked(self, task: Task, ctx: JobContext, right_context: bool) -> list[np.ndarray]:
        """Regions longer than the model's window: fill left to right, each chunk continuing the last."""
        ctx_frames = int(round(self.context_seconds * self.sr / self.ratio))
        chunk_frames = self.cfg.max_latents - 3 - min(ctx_frames, self.cfg.max_latents // 2)
        step = int(chunk_frames * self.ratio / self.sr * task.sr)
        if step < task.sr // 100:
            raise SegueError("internal", "model window too short for chunked generation")
        outs = None
        audio = task.audio if task.audio is not None else np.zeros((task.channels, 0), np.float32)
        pos = 0
        while pos < task.frames:
            n = min(step, task.frames - pos)
            last = pos + n >= task.frames
            results = []
            for k in range(task.variations):
                prev = audio[:, : task.start_sample] if outs is None else np.concatenate([audio[:, : task.start_sample], outs[k]], axis=1)
                if last and right_context and task.kind == "inpaint":
                    full = np.concatenate([prev, audio[:, task.start_sample + pos + n:]], axis=1)
                    sub = Task("inpaint", task.sr, task.channels, task.start_sample + pos, n, full, task.grid,
                               task.prompt, task.seed + k + pos, 1, None)
                elif prev.shape[-1] == 0:
                    sub = Task("generate", task.sr, task.channels, 0, n, None, task.grid, task.prompt,
                               task.seed + k, 1, None)
                else:
                    sub = Task("continue", task.sr, task.channels, prev.shape[-1], n, prev, task.grid,
                               task.prompt, task.seed + k + pos, 1, None)
                results.append(self._edit(sub, JobContext(cancelled=lambda: self._check(ctx)), right_context)[0])
            outs = results if outs is None else [np.concatenate([o, r], axis=1) for o, r in zip(outs, results)]
            pos += n
            ctx.progress(0.05 + 0.9 * pos / task.frames, f"chunk {pos / task.sr:.1f}/{task.frames / task.sr:.1f} s")
        return outs

    @staticmethod
    def _check(ctx: JobContext) -> bool:
        ctx.check()
        return False

    # ------------------------------------------------------------ sampling
    def _sample(self, task: Task, ctx: JobContext, known: torch.Tensor, keep: torch.Tensor, seconds: float):
        prompt = self.prompt_for(task)
        ctx.progress(0.07, "text")
        emb = self.text.embed([prompt]).to(self.device)                       # (1, L, 768)
        sec = self.model.seconds([seconds], device=self.device).float()        # (1, 1, 768)
        cross, glob = torch.cat([emb, sec], dim=1), sec[:, 0]
        n = task.variations
        seeds = [task.seed + k for k in range(n)]
        batch = n
        while True:
            try:
                outs = []
                for i in range(0, n, batch):
                    outs.append(self._sample_batch(seeds[i:i + batch], cross, glob, known, keep, ctx))
                return torch.cat(outs)
            except torch.OutOfMemoryError:
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                if batch == 1:
                    raise SegueError("out_of_memory", "the device ran out of memory even for one variation; "
                                     "try a shorter region or --precision bf16")
                batch = max(1, batch // 2)

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
        model = lambda xx, tt: self._dit_fn(xx, tt, crossb, globb, cfg_scale=self.cfg_scale).float()
        has_known = bool(keep.any())
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

    # ------------------------------------------------------------ back to the project
    def _paste(self, task: Task, src: _SourceLatents | None, y44: np.ndarray, g0: int) -> np.ndarray:
        """y44: generated stereo at 44.1 kHz starting at model sample g0. -> (channels, length) at task.sr."""
        sr_t = task.sr
        a44 = task.start_sample * self.sr / sr_t
        b44 = (task.start_sample + task.frames) * self.sr / sr_t
        # level match: the generated audio outside the region vs the source there (codec level drift)
        if src is not None:
            idx = np.arange(y44.shape[-1]) + g0
            outside = (idx < a44) | ((idx >= b44) if task.kind == "inpaint" else False)
            outside &= idx < src.n_real
            if outside.sum() > 256:
                ro = float(np.sqrt(np.mean(src.audio[:, idx[outside]] ** 2)))
                rg = float(np.sqrt(np.mean(y44[:, outside] ** 2)))
                if ro > 1e-5 and rg > 1e-5:
                    y44 = y44 * float(np.clip(ro / rg, 0.25, 4.0))
        # to the task rate, aligned: start the resampled span on a sample shared by both rates
        step = self.sr // math.gcd(self.sr, sr_t)
        g0a = (g0 // step) * step
        y44 = np.pad(y44, ((0, 0), (g0 - g0a, 0)))
        y = resample(np.ascontiguousarray(y44, dtype=np.float32), self.sr, sr_t)
        first = g0a * sr_t // self.sr                    # task-rate sample of y[:, 0]
        off = task.start_sample - first
        out = y[:, off: off + task.frames]
        if out.shape[-1] < task.frames:
            out = np.pad(out, ((0, 0), (0, task.frames - out.shape[-1])), mode="edge")
        out = np.array(out, dtype=np.float32)
        if task.channels == 1:
            out = out.mean(axis=0, keepdims=True)
        elif task.channels > 2:
            out = np.concatenate([out, np.repeat(out[-1:], task.channels - 2, axis=0)])
        xf = int(round(self.crossfade_seconds * sr_t))
        xf = max(1, min(xf, task.frames // 4)) if task.frames >= 4 else task.frames
        src_audio = task.audio
        if task.kind == "inpaint" and src_audio is not None:
            # Fade from (and back to) an AR extrapolation of the source around the region, not the
            # region's own old audio: a drum hit being replaced must not leak into the first 30 ms.
            join_source(out, src_audio, task.start_sample, xf)
        elif task.kind == "continue" and src_audio is not None and src_audio.shape[-1] >= 2:
            # continue the source's last sample and slope, the correction fading out over xf samples
            last = src_audio[:, -1]
            slope = src_audio[:, -1] - src_audio[:, -2]
            err = (last + slope) - out[:, 0]
            fade = np.cos(np.linspace(0, np.pi / 2, xf, dtype=np.float32)) ** 2
            out[:, :xf] += err[:, None] * fade[None]
        return out
