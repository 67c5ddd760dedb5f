"""The text prompt as the Stable Audio models were trained on it: the tempo appended ("..., 120 BPM"),
and the text encoder run on the prompt's real tokens only."""

from __future__ import annotations


def with_tempo(text: str, grid) -> str:
    """"tight funk drums" + Grid(120) -> "tight funk drums, 120 BPM"; just "120 BPM" with no text;
    the text unchanged when no tempo is known (grid None)."""
    text = (text or "").strip()
    if grid is None:
        return text
    bpm = f"{grid.bpm:g} BPM"
    return f"{text}, {bpm}" if text else bpm


def encode_real_tokens(encoder, ids, mask):
    """A right-padded batch through a masked text encoder (T5, T5Gemma) on its real tokens only ->
    last_hidden_state (B, N, d), zeros at the pad positions beyond the longest prompt.

    ids, mask (B, N) (mask bool, True = token). Under the attention mask a real token never sees a
    pad, so its output is the same as in a run over all N positions; the callers replace or zero
    the pads' outputs, as the official conditioners do. A short prompt is ~10 tokens of encoder
    work instead of N (64 for t5-base, 256 for T5Gemma). A batch whose tokens are not all at the
    front (a left-padding tokenizer) runs whole."""
    import torch

    n = max(int(mask.sum(1).max()), 1)
    if int(mask[:, :n].sum()) != int(mask.sum()):
        n = ids.shape[1]
    h = encoder(input_ids=ids[:, :n], attention_mask=mask[:, :n])["last_hidden_state"]
    if n < ids.shape[1]:
        h = torch.cat([h, h.new_zeros(h.shape[0], ids.shape[1] - n, h.shape[2])], dim=1)
    return h
