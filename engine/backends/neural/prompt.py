"""The text prompt as the Stable Audio models were trained on it: the tempo appended ("..., 120 BPM")."""

from __future__ import annotations


def with_tempo(text: str, grid) -> str:
    """"tight funk drums" + Grid(120) -> "tight funk drums, 120 BPM"; just "120 BPM" with no text;
    the text unchanged when no tempo is known (grid None)."""
    text = (text or "").strip()
    if grid is None:
        return text
    bpm = f"{grid.bpm:g} BPM"
    return f"{text}, {bpm}" if text else bpm
