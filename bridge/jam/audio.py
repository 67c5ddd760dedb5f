"""The jam's one duplex audio stream (sounddevice / PortAudio).

The callback is the jam's timeline: it counts frames, stamps its entry time for the MIDI `FrameStamper`,
writes the selected input channels into the ring buffer, meters the input, and lets the `Mixer` write clips
into the output. It does no generation and takes no lock: generation runs in the engine process, and the
control thread talks to the callback through atomic attribute reads and the mixer's deque.
"""

from __future__ import annotations

import numpy as np

from .clock import ClockMap, FrameStamper, now
from .ringbuffer import RingBuffer
from .scheduler import Mixer


def parse_channels(spec: str | None, what: str) -> list[int]:
    """'1,2' -> [0, 1] (channels are numbered from 1 on the command line). Raises ValueError."""
    if not spec:
        return [0, 1]
    try:
        chans = [int(x) - 1 for x in spec.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"{what} channels {spec!r} must be numbers from 1, e.g. 1,2") from None
    if not chans or min(chans) < 0:
        raise ValueError(f"{what} channels {spec!r} must be numbers from 1, e.g. 1,2")
    return chans


def _device(spec: str | None):
    """A device index ('3') or a name (or a unique part of one); None = the default device."""
    if spec is None or spec == "":
        return None
    return int(spec) if spec.isdigit() else spec


class JamAudio:
    """Duplex stream: input channels `in_channels` (0-based) into `ring`, `mixer` out on `out_channels`.

    Raises RuntimeError with PortAudio's message when the stream cannot be opened.
    """

    def __init__(self, ring: RingBuffer, mixer: Mixer, stamper: FrameStamper, in_channels: list[int],
                 out_channels: list[int], device_in: str | None = None, device_out: str | None = None,
                 samplerate: int | None = None, blocksize: int = 0, api: str | None = None):
        try:
            import sounddevice as sd
        except OSError as e:  # sounddevice loads PortAudio at import
            raise RuntimeError(f"sounddevice cannot load PortAudio ({e}); on Debian/Ubuntu: apt install "
                               "libportaudio2") from None

        self.sd = sd
        self.error: str | None = None  # the last exception inside the callback (the stream keeps running)
        self.ring, self.mixer, self.stamper = ring, mixer, stamper
        self.in_channels, self.out_channels = in_channels, out_channels
        self.cmap: ClockMap | None = None  # set by the control thread
        self.frame = 0  # absolute frame of the next block
        self.block = 0
        self.xruns = 0
        self.level_db = -120.0
        self.t_last = 0.0
        try:
            din, dout = self._pick(api, _device(device_in), "input"), self._pick(api, _device(device_out), "output")
            n_in, n_out = max(in_channels) + 1, max(out_channels) + 1
            if dout is None and _no_default(sd, "output"):
                raise ValueError("this machine has no default audio output device (PortAudio lists none: "
                                 "no sound card, or JACK not running); name one with --device-out")
            if din is None and _no_default(sd, "input"):
                # the jam also records (its input is the context of what it generates)
                raise ValueError("this machine has no default audio input device (the jam records its "
                                 "input); name one with --device-in")
            if samplerate is None:
                info = sd.query_devices(dout) if dout is not None else sd.query_devices(kind="output")
                samplerate = int(info["default_samplerate"])
            self.stream = sd.Stream(samplerate=samplerate, blocksize=blocksize, device=(din, dout),
                                    channels=(n_in, n_out), dtype="float32", callback=self._callback)
        except (sd.PortAudioError, ValueError) as e:
            apis = ", ".join(f"{h['name']} ({len(h['devices'])} devices)" for h in sd.query_hostapis())
            rate = ""
            if samplerate is not None and "sample rate" in str(e).lower():   # PortAudio does not say which
                try:
                    info = sd.query_devices(dout) if dout is not None else sd.query_devices(kind="output")
                    rate = (f" (the output device runs at {int(info['default_samplerate'])} Hz, "
                            f"--samplerate asked {samplerate}; a JACK server's rate is fixed when it starts)")
                except Exception:
                    pass
            raise RuntimeError(f"cannot open the audio stream: {e}{rate}. Audio APIs here: {apis}; choose with "
                               "--audio-api, --device-in, --device-out (under JACK the server must be running "
                               "before the jam starts)") from None
        self.sr = int(self.stream.samplerate)

    def _pick(self, api: str | None, dev, kind: str):
        """Device in the chosen host API (e.g. 'jack'), by index or name; None = that API's default."""
        sd = self.sd
        if api is None:
            return dev
        apis = [i for i, h in enumerate(sd.query_hostapis()) if api.lower() in h["name"].lower()]
        if not apis:
            names = ", ".join(h["name"] for h in sd.query_hostapis())
            raise ValueError(f"no audio API matching {api!r} (available: {names})")
        hostapi = sd.query_hostapis(apis[0])
        if dev is None:
            idx = hostapi[f"default_{kind}_device"]
            if idx < 0:
                raise ValueError(f"audio API {hostapi['name']} has no default {kind} device")
            return idx
        if isinstance(dev, int):
            return dev
        hits = [i for i in hostapi["devices"] if dev.lower() in sd.query_devices(i)["name"].lower()]
        if len(hits) != 1:
            raise ValueError(f"{kind} device {dev!r} matches {len(hits)} devices of {hostapi['name']}")
        return hits[0]

    def start(self) -> None:
        self.stream.start()

    def close(self) -> None:
        """Stop and close the stream, then terminate PortAudio (before a JACK server goes away, PortAudio
        must be gone: live.md, exit 134 otherwise)."""
        try:
            self.stream.stop()
            self.stream.close()
        finally:
            self.sd._terminate()

    def _callback(self, indata, outdata, frames, time_info, status) -> None:
        t = now()
        f0 = self.frame
        self.stamper.mark(t, f0, frames)
        if status:
            self.xruns += 1
        block = indata[:, self.in_channels]
        self.ring.write(block, f0)
        peak = float(np.max(np.abs(block))) if frames else 0.0
        self.level_db = max(20.0 * np.log10(peak + 1e-6), self.level_db - 0.5 * frames / 480.0)
        outdata.fill(0.0)
        mix = np.zeros((frames, len(self.out_channels)), dtype=np.float32)
        try:
            self.mixer.render(mix, f0, self.cmap)
            outdata[:, self.out_channels] = mix
        except Exception as e:  # a bug must not stop the band's audio: silence this block, report it
            self.error = f"{type(e).__name__}: {e}"
        self.frame = f0 + frames
        self.block = frames
        self.t_last = t


def _no_default(sd, kind: str) -> bool:
    """True when PortAudio has no default device of `kind` ("input" / "output"): querying it would
    fail with the cryptic "Error querying device -1"."""
    try:
        sd.query_devices(kind=kind)
        return False
    except sd.PortAudioError:
        return True
