"""Random-init MusicGen folders in the official `facebook/musicgen-small` layout, built from configs.

No weights are downloaded. `write_tiny_folder` makes a model small enough for unit tests (a tiny
T5 stand-in, a tiny EnCodec with the real 640-sample hop at 32 kHz, 4 codebooks, a 2-layer decoder);
`write_fullsize_folder` makes one with musicgen-small's shapes (t5-base encoder, EnCodec 32 kHz,
24-layer decoder: 586.9M parameters) for benchmarks. Both hold config.json, generation_config.json,
model.safetensors, preprocessor_config.json and the T5 tokenizer files, as the official repo does.
The T5 stand-in recipe is in shared/reference/models.md ("Testing without weights").
"""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ("a the drum drums bass piano loop house techno beat guitar synth bpm 120 90 warm dark bright "
         "music lofi jazz funk rock").split()


def make_tokenizer(folder: Path):
    """A T5TokenizerFast over a tiny Unigram vocabulary (saved as tokenizer.json + config)."""
    from tests.sao.fixtures import make_t5_tokenizer

    return make_t5_tokenizer(folder, [f"\u2581{w}" for w in WORDS]
                             + list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,."))


def _configs(full: bool, text_vocab: int):
    from transformers import EncodecConfig, MusicgenDecoderConfig, T5Config

    if full:   # musicgen-small: t5-base, EnCodec 32 kHz (hop 640, 2048 codes, 4 codebooks), 24-layer decoder
        t5 = T5Config(vocab_size=32128, d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_heads=12)
        enc = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=64, hidden_size=128,
                            upsampling_ratios=[8, 5, 4, 4], codebook_size=2048, codebook_dim=128,
                            target_bandwidths=[2.2], num_lstm_layers=2, norm_type="weight_norm",
                            use_causal_conv=False, use_conv_shortcut=False, normalize=False,
                            chunk_length_s=None, overlap=None)
        dec = MusicgenDecoderConfig(vocab_size=2048, hidden_size=1024, num_hidden_layers=24,
                                    num_attention_heads=16, ffn_dim=4096, num_codebooks=4,
                                    max_position_embeddings=2048, pad_token_id=2048, bos_token_id=2048)
    else:      # tiny, but the same hop (640 at 32 kHz), delay pattern (4 codebooks) and token ids layout
        t5 = T5Config(vocab_size=text_vocab, d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2)
        enc = EncodecConfig(sampling_rate=32000, audio_channels=1, num_filters=4, hidden_size=8,
                            upsampling_ratios=[8, 5, 4, 4], codebook_size=64, codebook_dim=8,
                            target_bandwidths=[1.2], num_lstm_layers=1, num_residual_layers=1,
                            norm_type="weight_norm", use_causal_conv=False, use_conv_shortcut=False,
                            normalize=False, chunk_length_s=None, overlap=None)
        dec = MusicgenDecoderConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    ffn_dim=64, num_codebooks=4, max_position_embeddings=2048,
                                    pad_token_id=64, bos_token_id=64)
    for c in (t5,):
        c.pad_token_id, c.eos_token_id, c.decoder_start_token_id = 0, 1, 0
    return t5, enc, dec


def build_model(full: bool = False, seed: int = 0, text_vocab: int = 80):
    """A random-init MusicgenForConditionalGeneration with an official-style generation config."""
    from transformers import MusicgenConfig, MusicgenForConditionalGeneration

    t5, enc, dec = _configs(full, text_vocab)
    cfg = MusicgenConfig(text_encoder=t5.to_dict(), audio_encoder=enc.to_dict(), decoder=dec.to_dict())
    torch.manual_seed(seed)
    model = MusicgenForConditionalGeneration(cfg).eval()
    # EnCodec's codebooks are buffers initialised to zeros (k-means fills them in training): without
    # this every code would decode to the same audio and no test could tell tokens apart
    with torch.no_grad():
        for layer in model.audio_encoder.quantizer.layers:
            cb = layer.codebook
            cb.embed.normal_(0.0, 1.0)
            cb.embed_avg.copy_(cb.embed)
            cb.cluster_size.fill_(1.0)
            cb.inited.fill_(1.0)
    gc = model.generation_config
    pad = dec.pad_token_id
    gc.decoder_start_token_id = gc.pad_token_id = gc.bos_token_id = pad
    gc.do_sample, gc.guidance_scale, gc.top_k, gc.max_length = True, 3.0, 250, 1500
    return model


def write_folder(folder: Path, full: bool = False, seed: int = 0) -> Path:
    """Save a random-init model, tokenizer and feature extractor config like facebook/musicgen-small."""
    from transformers import EncodecFeatureExtractor

    folder = Path(folder)
    tok, n = make_tokenizer(folder)
    model = build_model(full=full, seed=seed, text_vocab=n)
    model.save_pretrained(str(folder), safe_serialization=True)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=32000, padding_value=0.0).save_pretrained(str(folder))
    return folder


def write_tiny_folder(folder: Path, seed: int = 0) -> Path:
    return write_folder(folder, full=False, seed=seed)


def write_fullsize_folder(folder: Path, seed: int = 0) -> Path:
    return write_folder(folder, full=True, seed=seed)
