"""A stand-in for the `segue` command-line client, for the REAPER script tests.

It accepts the client's documented arguments (docs/protocol.md, "Command-line
client"), logs every invocation (argv as JSON lines in $FAKE_SEGUE_LOG/calls.jsonl)
and plays one scripted engine behaviour chosen by $FAKE_SEGUE_MODE, writing the
`--status-file` the way the real client does (key=value lines, atomic rename):

  ok                 ping answers; requests end in done with WAV files of the
                     protocol's exact length (written here, 32-bit float)
  no_engine          nothing answers (state=error code=no_engine)
  error:CODE:MSG     ping answers; requests end in error CODE MSG
  delay:N            as ok, but each request takes N seconds (the user edits meanwhile)
  slow               requests report progress until `segue cancel ID` runs,
                     then end in error cancelled (or done after 30 s)
  autostart          no_engine until `segue serve` has been run once
  neural             like ok, and generate works too (ok answers generate with
                     error unsupported, as the dsp backend does)
  shutdown           requests end in error cancelled "engine shutting down"
                     (the engine was stopped while they ran)
  gone               requests end in error engine_gone (the client noticed the
                     engine stopped answering; exit 3)

The real client and engine are exercised by tests/test_reaper_e2e.py.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from pathlib import Path

LOG = Path(os.environ.get("FAKE_SEGUE_LOG", "/tmp/fake-segue"))
MODE = os.environ.get("FAKE_SEGUE_MODE", "ok")


def write_status(status_path: str | None, **fields) -> None:
    if not status_path:
        return
    lines = []
    for k, v in fields.items():
        for x in v if isinstance(v, list) else [v]:
            lines.append(f"{k}={x}")
    tmp = f"{status_path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, status_path)


def write_wav(path: Path, sr: int, frames: int, channels: int = 1) -> None:
    data = struct.pack(f"<{frames * channels}f", *([0.0] * (frames * channels)))
    fmt = struct.pack("<HHIIHH", 3, channels, sr, sr * 4 * channels, 4 * channels, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


def wav_rate(path: str) -> int:
    with open(path, "rb") as f:
        head = f.read(64)
    i = head.find(b"fmt ")
    return struct.unpack("<I", head[i + 12:i + 16])[0]


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="segue")
    sub = p.add_subparsers(dest="command", required=True)

    def common(q, request=True):
        q.add_argument("--host", default="127.0.0.1")
        q.add_argument("--port", type=int, default=9137)
        q.add_argument("--token")
        q.add_argument("--id")
        q.add_argument("--timeout", type=float, default=600)
        q.add_argument("--status-file")
        q.add_argument("--quiet", action="store_true")
        if request:
            q.add_argument("--bpm", type=float)
            q.add_argument("--sig")
            q.add_argument("--sr", type=int)
            q.add_argument("--downbeat", type=float)
            q.add_argument("--prompt")
            q.add_argument("--seed", type=int)
            q.add_argument("--variations", type=int, default=1)
            q.add_argument("--out")
            q.add_argument("--backend")

    q = sub.add_parser("inpaint"); q.add_argument("src"); q.add_argument("start", type=float); q.add_argument("end", type=float); common(q)
    q.add_argument("--regions"); q.add_argument("--hit", choices=["replace", "remove"])
    q = sub.add_parser("continue"); q.add_argument("src"); q.add_argument("at", type=float); q.add_argument("bars", type=float); common(q)
    q = sub.add_parser("generate"); q.add_argument("bars", type=float); common(q)
    q = sub.add_parser("ping"); common(q, request=False)
    q = sub.add_parser("cancel"); q.add_argument("request_id"); q.add_argument("--host"); q.add_argument("--port", type=int); q.add_argument("--token")
    q = sub.add_parser("serve"); q.add_argument("--host"); q.add_argument("--port", type=int); q.add_argument("--backend")
    q.add_argument("--token"); q.add_argument("--allow-dir", action="append")
    return p.parse_args(argv)


def out_length(a) -> tuple[int, int]:
    sr = a.sr or wav_rate(a.src)
    if a.command == "inpaint":
        return sr, int(round((a.end - a.start) * sr))
    num, den = (int(x) for x in (a.sig or "4/4").split("/"))
    return sr, int(round(a.bars * num * 4 / den * 60 / a.bpm * sr))


def main() -> int:
    LOG.mkdir(parents=True, exist_ok=True)
    a = parse(sys.argv[1:])
    with open(LOG / "calls.jsonl", "a") as f:
        f.write(json.dumps({"argv": sys.argv[1:], "mode": MODE}) + "\n")
    if a.command == "serve":
        (LOG / "served").write_text("1")
        return 0
    if a.command == "cancel":
        (LOG / f"cancel-{a.request_id}").write_text("1")
        return 0
    rid = a.id or "fake"
    st = a.status_file
    write_status(st, id=rid, state="sent")
    engine_up = MODE != "no_engine" and (MODE != "autostart" or (LOG / "served").exists())
    if not engine_up:
        time.sleep(0.2)
        write_status(st, id=rid, state="error", code="no_engine",
                     message=f"no engine answered at {a.host}:{a.port} within 3 s (start it with: segue serve)")
        return 3
    if a.command == "ping":
        write_status(st, id=rid, state="done", version="0.1.0", backend="dsp")
        return 0
    write_status(st, id=rid, state="accepted", fraction="0.0", stage="queued at position 0")
    if MODE == "shutdown":
        write_status(st, id=rid, state="error", code="cancelled", message="engine shutting down")
        return 1
    if MODE == "gone":
        write_status(st, id=rid, state="error", code="engine_gone",
                     message=f"the engine at {a.host}:{a.port} stopped answering (no answer for 5 s)")
        return 3
    if MODE.startswith("error:"):
        _, code, message = MODE.split(":", 2)
        write_status(st, id=rid, state="error", code=code, message=message)
        return 1
    if a.command == "generate" and MODE != "neural":
        write_status(st, id=rid, state="error", code="unsupported",
                     message="backend dsp cannot generate from a prompt; start the engine with a neural backend")
        return 1
    if MODE == "slow":
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30:
            if (LOG / f"cancel-{rid}").exists():
                write_status(st, id=rid, state="error", code="cancelled", message="cancelled by request")
                return 1
            write_status(st, id=rid, state="progress", fraction=f"{min((time.monotonic() - t0) / 30, 1):.4f}",
                         stage="generate")
            time.sleep(0.05)
    if MODE.startswith("delay:"):   # the request takes this long: the user edits the project meanwhile
        time.sleep(float(MODE.split(":")[1]))
    write_status(st, id=rid, state="progress", fraction="0.5000", stage="generate 1/2")
    sr, frames = out_length(a)
    out = Path(a.out) if a.out else LOG / "out"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(a.variations or 1):
        p = out / f"{Path(getattr(a, 'src', 'gen')).stem}-{a.command}-{rid}-v{k}.wav"
        write_wav(p, sr, frames)
        paths.append(str(p))
    write_status(st, id=rid, state="done", fraction="1", seconds=repr(frames / sr), sr=sr, path=paths)
    print("\n".join(paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
