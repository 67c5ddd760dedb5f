"""The test-only oracle: stable-audio-tools 0.0.20 (the PyPI twin of the official SA3 code), run in
its own process.

    python tests/sa3/oracle.py SAT_TARGET JOB.json

SAT_TARGET is the `pip install --no-deps --ignore-requires-python --target` folder of 0.0.20; it
goes first on sys.path so it wins over 0.0.19 (the sao-small oracle, same import name) in the
venv. The modules 0.0.20 imports but these tests never run (torchaudio, torchsde, pywt,
pytorch_lightning, k_diffusion) are stood in for when absent.

JOB.json: {"config": model_config dict, "folder": model folder (holds t5gemma-b-b-ul2/),
"seed": int, "randomize": bool, "refs": bool}. Writes folder/model_config.json and
folder/model.safetensors (the oracle's own state dict: official names), and with "refs"
folder/refs.pt holding the inputs and outputs the parity tests compare against.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _import_sat(target: str):
    sys.path.insert(0, target)
    sys.path.insert(1, str(ROOT))
    import transformers  # noqa: F401  - imported before any stand-in exists, so its probes see the truth
    from transformers import T5GemmaEncoderModel  # noqa: F401

    class _Unavailable:
        def __init__(self, *a, **k):
            raise RuntimeError("stand-in module: not available in the oracle")

    def stub(name, **attrs):
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        sys.modules[name] = m
        return m

    for top in ("torchaudio", "torchsde", "pywt", "pytorch_lightning", "k_diffusion"):
        if importlib.util.find_spec(top) is not None:
            continue
        m = stub(top)
        if top == "torchaudio":
            m.transforms = stub("torchaudio.transforms", Resample=_Unavailable, MelSpectrogram=_Unavailable)
            m.functional = stub("torchaudio.functional")
            m.prototype = stub("torchaudio.prototype")
            m.prototype.transforms = stub("torchaudio.prototype.transforms", ChromaSpectrogram=_Unavailable)
        elif top == "pytorch_lightning":
            m.Callback = type("Callback", (), {})
            m.callbacks = stub("pytorch_lightning.callbacks", ModelCheckpoint=type("ModelCheckpoint", (), {}))
    import stable_audio_tools

    assert Path(stable_audio_tools.__file__).resolve().is_relative_to(Path(target).resolve()), \
        f"wrong stable_audio_tools: {stable_audio_tools.__file__}"
    from stable_audio_tools.inference.generation import generate_diffusion_cond_inpaint
    from stable_audio_tools.models.diffusion import create_diffusion_cond_from_config

    return create_diffusion_cond_from_config, generate_diffusion_cond_inpaint


SHIFT_CASES = [("logsnr", "LogSNRShift", {"rate": 0, "anchor_logsnr": -6.2, "logsnr_end": 2.0}),
               ("logsnr", "LogSNRShift", {"rate": 1.0}),
               ("full", "DistributionShift", {}),
               ("full", "DistributionShift", {"base_shift": 0.3, "max_shift": 2.0, "use_sine": True}),
               ("flux", "FluxDistributionShift", {"alpha_min": 1.5, "alpha_max": 6.93}),
               ("none", "IdentityDistributionShift", {})]


def _refs(model, generate, cfg: dict) -> dict:
    import torch

    sr = cfg["sample_rate"]
    io = cfg["model"]["io_channels"]
    g = torch.Generator().manual_seed(5)
    out: dict = {}
    dit = model.model

    # --- DiT forward: plain, with inpainting conditioning and padding mask, with guidance
    n = 40
    x = torch.randn(2, io, n, generator=g)
    t = torch.tensor([0.9, 0.3])
    cross = torch.randn(2, 20, 768, generator=g)
    glob = torch.randn(2, 768, generator=g)
    mask = (torch.rand(2, 1, n, generator=g) > 0.5).float()
    local = torch.cat([mask, torch.randn(2, io, n, generator=g) * mask], dim=1)
    keep = torch.arange(n)[None].expand(2, n) < torch.tensor([[34], [40]])
    out["dit_in"] = dict(x=x, t=t, cross=cross, glob=glob, local=local, keep=keep)
    with torch.no_grad():
        out["dit_plain"] = dit(x, t, cross_attn_cond=cross, global_cond=glob, cfg_scale=1.0)
        out["dit_local"] = dit(x, t, cross_attn_cond=cross, global_cond=glob, local_add_cond=local,
                               padding_mask=keep, cfg_scale=1.0)
        out["dit_cfg_apg"] = dit(x, t, cross_attn_cond=cross, global_cond=glob, local_add_cond=local,
                                 padding_mask=keep, cfg_scale=3.0)
        out["dit_cfg_plain"] = dit(x, t, cross_attn_cond=cross, global_cond=glob, local_add_cond=local,
                                   cfg_scale=3.0, apg_scale=0.0)

    # --- SAME: encode (deterministic), decode with the noise off and with aligned noise
    pt = model.pretransform
    audio = torch.randn(2, 2, 3 * 8192 + 1000, generator=g) * 0.3
    z = torch.randn(2, io, 6, generator=g)
    out["same_in"] = dict(audio=audio, z=z)
    dec = pt.model.decoder.layers[3]
    with torch.no_grad():
        out["same_encode"] = pt.encode(audio)
        saved = (dec.mask_noise, pt.model.bottleneck.noise_regularize)
        dec.mask_noise, pt.model.bottleneck.noise_regularize = 0.0, False
        out["same_decode_quiet"] = pt.decode(z)
        dec.mask_noise, pt.model.bottleneck.noise_regularize = saved
        torch.manual_seed(77)
        out["same_decode_noisy"] = pt.decode(z)

    # --- SAME chunked (128 latent frames, overlap 32), as a config with "chunked": true runs it
    long_audio = torch.randn(1, 2, 150 * 4096 + 333, generator=g) * 0.3
    long_z = torch.randn(1, io, 150, generator=g)
    out["same_chunked_in"] = dict(audio=long_audio, z=long_z)
    pt.chunked = True
    with torch.no_grad():
        out["same_chunked_encode"] = pt.encode(long_audio)
        torch.manual_seed(78)
        out["same_chunked_decode"] = pt.decode(long_z)
    pt.chunked = False

    # --- conditioners
    prompts = ["drum loop 120 bpm", "warm dark bass house techno beat", "kick"]
    seconds = [0.0, 3.0, 5.5, 384.0, 500.0, -2.0]
    conds = model.conditioner.conditioners
    with torch.no_grad():
        emb, m = conds["prompt"](prompts, "cpu")
        out["cond_in"] = dict(prompts=prompts, seconds=seconds)
        out["prompt_emb"], out["prompt_mask"] = emb, m
        out["seconds_emb"] = conds["seconds_total"](seconds, "cpu")[0]

    # --- schedules: every distribution shift the config may select
    from stable_audio_tools.inference import sampling as S

    out["schedules"] = {}
    for i, (kind, cls, args) in enumerate(SHIFT_CASES):
        for seq, sigma_max in ((54, 1.0), (1292, 1.0), (300, 0.7)):
            shift = getattr(S, cls)(**args)
            out["schedules"][(i, seq, sigma_max)] = S.build_schedule(8, sigma_max=sigma_max, dist_shift=shift,
                                                                        effective_seq_len=seq)

    # --- whole trajectories through the official generate path
    src = torch.randn(2, int(4.2 * sr), generator=g) * 0.2
    out["traj_in"] = dict(src=src)
    common = dict(steps=8, sample_size=cfg["sample_size"], device="cpu", sampler_type="pingpong",
                  mask_padding_attention=True, use_effective_length_for_schedule=True, disable_tqdm=True)
    cases = {
        "inpaint": dict(seconds=5.0, start=1.0, end=2.0, cfg=1.0, audio=True, seed=1234),
        "continue": dict(seconds=5.0, start=3.0, end=5.0, cfg=1.0, audio=True, seed=99),
        "inpaint_cfg": dict(seconds=5.0, start=1.25, end=1.75, cfg=3.0, audio=True, seed=7),
        "generate": dict(seconds=3.0, start=None, end=None, cfg=1.0, audio=False, seed=3),
    }
    out["traj_cases"] = cases
    for name, c in cases.items():
        kw = dict(common, cfg_scale=c["cfg"], seed=c["seed"],
                  conditioning=[{"prompt": "drum loop 120 bpm", "seconds_total": c["seconds"]}])
        if c["audio"]:
            kw.update(inpaint_audio=(sr, src), inpaint_mask_start_seconds=c["start"],
                      inpaint_mask_end_seconds=c["end"])
        with torch.no_grad():
            out[f"traj_{name}_latents"] = generate(model, return_latents=True, **kw)
            out[f"traj_{name}_audio"] = generate(model, **kw)
    return out


def main(target: str, job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    create, generate = _import_sat(target)
    import torch
    from safetensors.torch import save_file

    from tests.sa3.fixtures import randomize_

    cfg = job["config"]
    folder = Path(job["folder"])
    built = copy.deepcopy(cfg)
    for c in built["model"]["conditioning"]["configs"]:
        if c["type"] == "t5gemma":
            c["config"]["model_path"] = str(folder)          # + its subfolder: the stand-in T5Gemma
    torch.manual_seed(job.get("seed", 0))
    model = create(built).eval().requires_grad_(False)
    if job.get("randomize", True):
        randomize_(model, job.get("seed", 0))
    (folder / "model_config.json").write_text(json.dumps(cfg, indent=1))
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    if job.get("refs", False):
        refs = _refs(model, generate, cfg)
        refs["shift_cases"] = SHIFT_CASES
        torch.save(refs, str(folder / "refs.pt"))
    print(json.dumps({"tensors": len(state), "params": sum(v.numel() for v in state.values())}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
