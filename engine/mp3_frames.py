"""MPEG audio frame headers: how long an MP3 stream really is when no tag says so.

A VBR MP3 states its length in a Xing/Info (LAME) or VBRI tag in its first frame. Without one,
libsndfile (and pedalboard) estimate the length from the file size and the first frame's bitrate,
and decode only that far: a VBR file whose first second is loud can read as 3.4 s of its 13 s.
Walking the frame headers (ISO/IEC 11172-3 and 13818-3: sync, version, layer, bitrate, rate,
padding) counts the frames the stream holds, so the engine can refuse such a file with a clear
error instead of serving part of it.
"""

from __future__ import annotations

# Layer III bitrates in kb/s by bitrate index: MPEG-1, and MPEG-2 / 2.5 (LSF).
_KBPS = {1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
         2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}   # by version bits
TAGS = (b"Xing", b"Info", b"VBRI")
SYNC_SEARCH_BYTES = 1 << 16     # how far past the ID3v2 tag the first frame header is looked for


def _header(b: bytes, i: int) -> tuple[int, int, int] | None:
    """(frame length in bytes, samples per frame, rate in Hz) of a Layer III frame header at b[i:i+4]."""
    if i + 4 > len(b) or b[i] != 0xFF or (b[i + 1] & 0xE0) != 0xE0:
        return None
    version, layer = (b[i + 1] >> 3) & 3, (b[i + 1] >> 1) & 3
    rate_index, bitrate_index = (b[i + 2] >> 2) & 3, b[i + 2] >> 4
    if version == 1 or layer != 1 or rate_index == 3 or bitrate_index in (0, 15):
        return None     # reserved version, not Layer III, reserved rate, free or bad bitrate
    sr = _RATES[version][rate_index]
    mpeg1 = version == 3
    kbps = _KBPS[1 if mpeg1 else 2][bitrate_index]
    padding = (b[i + 2] >> 1) & 1
    length = (144 if mpeg1 else 72) * kbps * 1000 // sr + padding
    return length, (1152 if mpeg1 else 576), sr


def _audio_start(b: bytes) -> int:
    """Offset of the first byte after an ID3v2 tag (0 without one)."""
    if b[:3] == b"ID3" and len(b) >= 10:
        size = (b[6] & 0x7F) << 21 | (b[7] & 0x7F) << 14 | (b[8] & 0x7F) << 7 | (b[9] & 0x7F)
        return 10 + size + (10 if b[5] & 0x10 else 0)
    return 0


def untagged_stream_seconds(data: bytes) -> float | None:
    """Seconds of audio the MPEG Layer III frames in `data` (a whole .mp3 file) hold, counted frame by
    frame, when its first frame carries no Xing/Info/VBRI tag; None when it does (the tag is trusted)
    or when no run of valid frames is found. Includes the encoder's delay and padding (at most a few
    frames): an upper bound of the decoded length. Never raises."""
    i = _audio_start(data)
    stop = min(len(data) - 4, i + SYNC_SEARCH_BYTES)
    while i < stop and _header(data, i) is None:    # the first frame: junk or padding may come before it
        i += 1
    first = _header(data, i)
    if first is None:
        return None
    if any(t in data[i:i + first[0]] for t in TAGS):
        return None
    frames, sr, spf = 0, first[2], first[1]
    while True:
        h = _header(data, i)
        if h is None or h[2] != sr or i + h[0] > len(data):
            break      # the end, an ID3v1/APE tag, or damage: count what came before it
        frames += 1
        i += h[0]
    return frames * spf / sr if frames >= 2 else None
