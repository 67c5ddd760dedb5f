"""Shared fixtures: real `segue serve` processes on 127.0.0.1 and real audio files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _import_this_checkout() -> None:
    """Make `import segue.engine` load THIS checkout's engine/ and bridge/, here and in every subprocess
    started with PYTHONPATH=ROOT.

    The package maps engine/ -> segue.engine (pyproject package-dir), so a folder on PYTHONPATH does not
    hold `segue.engine` by itself, and an editable install made from another checkout (a venv shared by
    several worktrees) answers the import with that checkout's files: the tests here would test code that
    is not here. ROOT/segue/{engine,bridge} links (git-ignored) are found by the path finder, which runs
    before the editable install's finder. Where links cannot be made (Windows without the privilege) the
    installed package is used as before.
    """
    shim = ROOT / "segue"
    for name in ("engine", "bridge"):
        link = shim / name
        try:
            shim.mkdir(exist_ok=True)
            if link.is_symlink() and link.resolve() != (ROOT / name).resolve():
                link.unlink()  # a copied or moved checkout
            if not link.is_symlink():
                link.symlink_to(Path("..") / name, target_is_directory=True)  # relative: survives a move
        except OSError:
            return


_import_this_checkout()
sys.path.insert(0, str(ROOT))

from segue.bridge.client import EngineClient, NoEngine  # noqa: E402


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_wav(path: Path, audio: np.ndarray, sr: int) -> Path:
    from pedalboard.io import AudioFile

    audio = np.atleast_2d(np.asarray(audio, dtype=np.float32))
    with AudioFile(str(path), "w", samplerate=sr, num_channels=audio.shape[0]) as f:
        f.write(audio)
    return path


def read_audio(path) -> tuple[np.ndarray, int]:
    """(channels, frames) float32 and the rate, read as the engine reads (libsndfile: 16-bit PCM
    scaled by 1/32768); pedalboard for what libsndfile cannot open."""
    try:
        import soundfile as sf

        y, sr = sf.read(str(path), dtype="float32", always_2d=True)
        return np.ascontiguousarray(y.T), int(sr)
    except Exception:
        from pedalboard.io import AudioFile

        with AudioFile(str(path)) as f:
            return f.read(f.frames), int(f.samplerate)


def groove(seconds: float, sr: int, bpm: float = 120.0, channels: int = 2, num: int = 4, den: int = 4,
           seed: int = 1) -> np.ndarray:
    """Drum-and-bass-like audio on an exact grid (kick on bar lines, snare, hats, a bass line)."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sr))
    out = np.zeros(n)
    unit = 60.0 / bpm * 4.0 / den
    tt = np.arange(int(0.25 * sr)) / sr
    kick = np.sin(2 * np.pi * (50 + 90 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 9)
    snare = rng.standard_normal(len(tt)) * np.exp(-tt * 20) * 0.4
    notes = [55.0, 65.4, 73.4, 49.0]
    k = 0
    while k * unit < seconds:
        s = int(round(k * unit * sr))
        pos = k % num
        sig = kick if pos == 0 else (snare if pos == num // 2 else 0.3 * snare[: len(snare) // 3])
        m = min(len(sig), n - s)
        out[s:s + m] += sig[:m]
        bt = np.arange(min(int(unit * sr), n - s)) / sr
        out[s:s + len(bt)] += 0.2 * np.sin(2 * np.pi * notes[(k // num) % 4] * bt)
        k += 1
    out = 0.5 * out / np.max(np.abs(out))
    chans = [out * (1.0 - 0.1 * c) for c in range(channels)]
    return np.stack(chans).astype(np.float32)


class Engine:
    def __init__(self, proc: subprocess.Popen, port: int, root: Path, log: Path):
        self.proc, self.port, self.root, self.log = proc, port, root, log

    def client(self, **kw) -> EngineClient:
        return EngineClient("127.0.0.1", self.port, **kw)

    def alive(self) -> bool:
        with self.client() as c:
            try:
                out = c.call("/segue/ping", ["alive?"], answer_within=3.0)
            except NoEngine:
                return False
            return out.final.address == "/segue/pong"


def start_engine(tmp: Path, *extra: str, backend: str = "dsp", env: dict | None = None) -> Engine:
    port = free_port()
    root = tmp / "allowed"
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp / "xdg"), "PYTHONPATH": str(ROOT), **(env or {})}
    log = tmp / f"engine-{port}.log"
    proc = subprocess.Popen([sys.executable, "-m", "segue.engine.cli", "serve", "--port", str(port), "--backend", backend,
                             "--allow-dir", str(root), "--log-level", "debug", *extra],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
    eng = Engine(proc, port, root, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"engine exited: {log.read_text()}")
        with eng.client() as c:
            try:
                c.call("/segue/ping", ["startup"], answer_within=0.5)
                return eng
            except NoEngine:
                continue
    proc.kill()
    raise RuntimeError("engine did not answer within 60 s")


def stop_engine(eng: Engine) -> None:
    eng.proc.terminate()
    try:
        eng.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        eng.proc.kill()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine")
    eng = start_engine(tmp)
    yield eng
    stop_engine(eng)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Real audio files of several formats, rates and channel counts."""
    d = tmp_path_factory.mktemp("src")
    return {
        "loop48": write_wav(d / "loop48.wav", groove(30.0, 48000), 48000),
        "loop44_mono": write_wav(d / "loop44_mono.flac", groove(12.0, 44100, channels=1), 44100),
        "odd": write_wav(d / "odd_7_8.wav", groove(20.0, 44100, bpm=87.5, num=7, den=8), 44100),
        "short": write_wav(d / "short.wav", groove(1.0, 22050), 22050),
        "d": d,
    }
