"""The `segue` command line as a user meets it: real processes, real UDP on 127.0.0.1.

Exit codes (0 ok, 1 error reply, 2 usage, 3 no engine), messages in the client's own
terms, and never a traceback for a user mistake. Engine behaviour the client must
survive (a lost `done`, an engine that dies or hangs mid-request, Ctrl-C) is played by
a small scripted OSC peer (`FakeEngine`) so each case is exact.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import ROOT, free_port, groove, start_engine, stop_engine, write_wav

from segue.bridge.protocol import decode, encode

PY = sys.executable


def segue(*args: str, env: dict | None = None, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "segue.engine.cli", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, **kw)


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli-src")
    return write_wav(d / "loop 120.wav", groove(8.0, 44100), 44100)


class FakeEngine:
    """A scripted OSC peer on 127.0.0.1: `script(address, args, reply)` answers each datagram."""

    def __init__(self, script):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.script = script
        # defaults: the request runs (status names it), /segue/result is not answered
        self.status_script = lambda rid, reply: reply("/segue/status", rid, "busy", "dsp", 0, "r1")
        self.result_script = lambda rid, reply: None
        self.received: list[tuple[str, list]] = []
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.closed:
            try:
                data, sender = self.sock.recvfrom(65535)
            except OSError:
                return
            for address, args in decode(data):
                self.received.append((address, args))

                def reply(addr, *a, _to=sender):
                    if not self.closed:
                        self.sock.sendto(encode(addr, list(a)), _to)

                self.script(self, address, args, reply)

    def close(self):
        self.closed = True
        self.sock.close()

    def got(self, address: str) -> list[list]:
        return [a for addr, a in self.received if addr == address]


# ---------------------------------------------------------------- usage errors: exit 2, no traceback

@pytest.mark.parametrize("argv,needle", [
    (["ping", "--port", "70000"], "70000 is outside 1-65535"),
    (["serve", "--port", "70000"], "70000 is outside 1-65535"),
    (["serve", "--timeout", "-1"], "--timeout: -1 must be above 0"),
    (["serve", "--queue-size", "0"], "--queue-size: 0 must be at least 1"),
    (["serve", "--max-source-seconds", "-5"], "--max-source-seconds: -5 must be above 0"),
    (["cancel", "x", "--port", "0"], "0 is outside 1-65535"),
    (["inpaint", "a.wav", "1", "2", "--bpm", "500"], "--bpm: 500 must be at least 20 and at most 400"),
    (["continue", "a.wav", "8", "4"], "--bpm is required for continue"),
    (["continue", "a.wav", "8", "65", "--bpm", "120"], "BARS: 65 must be above 0 and at most 64"),
    (["renders", "--max-size", "lots"], "is not a size such as 500M"),
    (["ping", "--host", "10.1.2.3"], "not loopback"),
    (["ping", "--host", "no-such-host.invalid", "--token", "t"], "does not resolve"),
    (["ping", "--status-file", "/no/such/folder/st"], "cannot write --status-file"),
    (["inpaint", "a.wav", "x", "2"], "START: 'x' is not a number"),
    (["continue", "a.wav", "8", "4", "--bpm", "nan"], "'nan' is not a finite number"),
    (["inpaint", "a.wav", "1", "2", "--hit", "erase"], "invalid choice: 'erase'"),
    (["inpaint", "a.wav", "1", "2", "--seed", "-1"], "--seed: -1 must be at least 0 and at most 2147483647"),
    (["renders", "--older-than", "yesterday"], "is not an age such as 90m"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["inpaint", "a.wav", "4", "6", "--regions", "4.0-4.5"], "'4.0-4.5' is not START:END in seconds"),
    (["inpaint", "a.wav", "4", "6", "--regions", "4.0:4.5,5.5:6.5"], "'5.5:6.5' lies outside START..END (4-6 s)"),
    (["inpaint", "a.wav", "4", "6", "--regions", "4.0:5.0,4.5:5.5"], "the regions overlap"),
])
def test_usage_errors_exit_2_in_cli_terms(argv, needle):
    proc = segue(*argv)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    no_traceback(proc)


@pytest.mark.parametrize("argv,env,needle", [
    (["inpaint", "/tmp/lat\udce9.wav", "1", "2"], {}, "src '/tmp/lat\ufffd.wav' holds bytes that are not UTF-8"),
    (["cancel", "x\udce9"], {}, "request_id 'x\ufffd' holds bytes that are not UTF-8"),
    (["ping"], {"SEGUE_PORT": "abc"}, "$SEGUE_PORT: 'abc' is not a port number"),
    (["status"], {"SEGUE_PORT": "70000"}, "$SEGUE_PORT: 70000 is outside 1-65535"),
    (["renders", "--dir", "/nonexistent-segue-dir"], {}, "--dir /nonexistent-segue-dir: no such folder"),
])
def test_what_cannot_be_sent_or_found_is_a_usage_error(argv, env, needle):
    """A file name with a Latin-1 byte (OSC carries UTF-8 only: python-osc raised a traceback), a
    $SEGUE_PORT that is no port (it fell back to 9137, perhaps another engine), a mistyped --dir
    (it listed "0 file(s)")."""
    proc = segue(*argv, env=env)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert needle in proc.stderr, proc.stderr
    no_traceback(proc)


def test_every_subcommand_has_an_example_and_positional_help():
    from segue.engine.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    for name in ("serve", "inpaint", "continue", "generate", "ping", "status", "cancel", "renders", "demo"):
        p = subs[name]
        assert "example:" in (p.epilog or ""), name
        for action in p._actions:
            if not action.option_strings:
                assert action.help and len(action.help) > 10, (name, action.dest)
    text = segue("inpaint", "--help").stdout
    assert "seconds into SRC" in text and "(default: 600.0)" in text and "example:" in text


# ---------------------------------------------------------------- no engine: exit 3 at once, hint with the port

def test_no_engine_is_reported_at_once_with_the_right_port():
    port = free_port()
    t0 = time.monotonic()
    proc = segue("ping", "--port", str(port))
    took = time.monotonic() - t0
    assert proc.returncode == 3
    assert f"segue serve --port {port}" in proc.stderr and "port is closed" in proc.stderr
    # loopback reports the closed port (ICMP) at once: no 3 s wait (the process start is most of this)
    assert took < 2.8, took


def test_cancel_without_an_engine_says_no_engine():
    port = free_port()
    proc = segue("cancel", "abc", "--port", str(port))
    assert proc.returncode == 3 and "no_engine" in proc.stderr and f"--port {port}" in proc.stderr
    assert "cancel sent" not in proc.stdout


# ---------------------------------------------------------------- against a real engine

@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = start_engine(tmp_path_factory.mktemp("cli-engine"))
    yield eng
    stop_engine(eng)


def test_names_resolving_only_to_loopback_count_as_loopback():
    from segue.bridge.net import is_loopback_host, loopback_address

    assert loopback_address("localhost") == "127.0.0.1"   # /etc/hosts: 127.0.0.1 localhost
    assert loopback_address("127.0.0.1") == "127.0.0.1" and loopback_address("::1") == "::1"
    assert not is_loopback_host("10.1.2.3") and not is_loopback_host("no-such-host.invalid")
    assert not is_loopback_host("") and not is_loopback_host("0.0.0.0")


def test_localhost_is_loopback(engine):
    proc = segue("ping", "--host", "localhost", "--port", str(engine.port))
    assert proc.returncode == 0, proc.stderr
    assert "pong" in proc.stdout


def test_request_prints_its_id_progress_lines_to_100_and_the_status_file_keeps_the_stage(engine, loop, tmp_path):
    status = tmp_path / "req.status"
    proc = segue("inpaint", str(loop), "2.0", "3.0", "--bpm", "120", "--port", str(engine.port), "--id", "cli-id-1",
                 "--status-file", str(status))
    assert proc.returncode == 0, proc.stderr
    assert "request cli-id-1 sent" in proc.stderr and f"segue cancel cli-id-1 --port {engine.port}" in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("progress")]
    assert len(lines) >= 3, proc.stderr          # progress even though stderr is a pipe
    assert lines[-1].startswith("progress 100.0% ")
    assert "grid:" in proc.stderr                 # stage texts in full
    (path,) = proc.stdout.split()
    assert Path(path).exists()
    st = dict(line.split("=", 1) for line in status.read_text().splitlines() if not line.startswith("path="))
    assert st["state"] == "done" and st["id"] == "cli-id-1"
    assert st["stage"] not in ("", None) and st["fraction"] == "1"


def test_relative_source_path_and_quiet(engine, loop):
    proc = subprocess.run([PY, "-m", "segue.engine.cli", "continue", loop.name, "8.0", "1", "--bpm", "120", "--quiet",
                           "--port", str(engine.port)], capture_output=True, text=True, timeout=60, cwd=str(loop.parent),
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and Path(proc.stdout.strip()).exists()


def test_engine_errors_in_cli_terms(engine, loop):
    proc = segue("inpaint", str(loop), "1.0", "2.0", "--sig", "5/3", "--port", str(engine.port))
    assert proc.returncode == 1 and "error bad_option: --sig '5/3'" in proc.stderr
    proc = segue("inpaint", str(loop), "6", "4", "--port", str(engine.port))   # checked where every client is
    assert proc.returncode == 1 and "bad_region: START 6 s must be before END 4 s" in proc.stderr
    proc = segue("inpaint", str(loop) + ".missing", "1.0", "2.0", "--port", str(engine.port))
    assert proc.returncode == 1 and "source_not_found" in proc.stderr
    no_traceback(proc)


def test_generate_on_dsp_says_the_backend_cannot_generate_first(engine):
    proc = segue("generate", "4", "--port", str(engine.port))   # no --bpm: the backend is the first problem
    assert proc.returncode == 1
    assert "backend dsp cannot generate" in proc.stderr and "--backend sao-small" in proc.stderr
    assert "--bpm" not in proc.stderr


def test_cancel_of_an_unknown_id_on_a_running_engine(engine):
    proc = segue("cancel", "nobody-has-this", "--port", str(engine.port))
    assert proc.returncode == 1 and "not_found" in proc.stderr


def test_status_detail_names_a_backend_that_failed_to_load(tmp_path):
    eng = start_engine(tmp_path, "--model", "sao-small=" + str(tmp_path / "no-such-model"), backend="dsp,sao-small")
    try:
        proc = segue("status", "--detail", "--port", str(eng.port))
    finally:
        stop_engine(eng)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.startswith("{") for line in lines)      # the JSON line scripts parse is still there
    assert any(line.startswith("failed to load sao-small: ") for line in lines), lines


def test_cancel_of_a_running_128_character_id(engine, tmp_path):
    # the protocol takes ids up to 128 characters; the cancel's ping probe must not push past that
    # (it did: the engine cancelled, refused the probe, and the client said "no engine")
    rid = "x" * 128
    long_src = write_wav(tmp_path / "long.wav", groove(60.0, 48000), 48000)
    req = subprocess.Popen([PY, "-m", "segue.engine.cli", "continue", str(long_src), "60", "64", "--bpm", "60",
                            "--variations", "8", "--port", str(engine.port), "--id", rid], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert req.stderr.readline().startswith(f"request {rid}")
    proc = segue("cancel", rid, "--port", str(engine.port))
    assert proc.returncode == 0 and f"cancelled {rid}" in proc.stdout, proc.stderr
    out, err = req.communicate(timeout=60)
    assert req.returncode == 1 and "error cancelled" in err


@pytest.mark.parametrize("argv", [["cancel", "x" * 129], ["ping", "--id", "x" * 129], ["cancel", ""]])
def test_an_id_the_protocol_refuses_is_a_usage_error(argv):
    proc = segue(*argv, "--port", str(free_port()))
    assert proc.returncode == 2 and "request id" in proc.stderr, proc.stderr
    no_traceback(proc)


def test_cancel_by_the_printed_id(engine, tmp_path):
    long_src = write_wav(tmp_path / "long.wav", groove(60.0, 48000), 48000)
    req = subprocess.Popen([PY, "-m", "segue.engine.cli", "continue", str(long_src), "60", "64", "--bpm", "60",
                            "--variations", "8", "--port", str(engine.port)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    first = req.stderr.readline()
    rid = first.split()[1]
    assert first.startswith("request ") and f"segue cancel {rid}" in first
    proc = segue("cancel", rid, "--port", str(engine.port))
    assert proc.returncode == 0, proc.stderr
    assert f"cancelled {rid}" in proc.stdout
    out, err = req.communicate(timeout=60)
    assert req.returncode == 1 and "error cancelled" in err


# ---------------------------------------------------------------- engines that misbehave (scripted peer)

def _accept_then(after):
    def script(fake, address, args, reply):
        rid = args[0]
        if address in ("/segue/inpaint", "/segue/continue"):
            reply("/segue/accepted", rid, 0)
            reply("/segue/progress", rid, 0.5, "generate 1/1")
            after(fake, rid, reply)
        elif address == "/segue/status":
            fake.status_script(rid, reply)
        elif address == "/segue/result":
            fake.result_script(rid, reply)
    return script


def _client_proc(port: int, src: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([PY, "-m", "segue.engine.cli", "inpaint", str(src), "1", "2", "--port", str(port),
                             "--id", "r1", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_lost_done_is_recovered_with_result(loop):
    done_path = "/tmp/segue-recovered-v1.wav"

    def after(fake, rid, reply):
        pass  # the `done` is "lost": never sent

    fake = FakeEngine(_accept_then(after))
    fake.status_script = lambda rid, reply: reply("/segue/status", rid, "idle", "dsp", 0, "")
    fake.result_script = lambda rid, reply: reply("/segue/done", rid, done_path, 1.0, 44100)
    try:
        proc = _client_proc(fake.port, loop)
        out, err = proc.communicate(timeout=30)
    finally:
        fake.close()
    assert proc.returncode == 0, err
    assert out.strip() == done_path and "recovered" in err
    assert fake.got("/segue/result") == [["r1"]]


def test_an_engine_that_forgot_the_request_is_an_error_not_a_hang(loop):
    fake = FakeEngine(_accept_then(lambda fake, rid, reply: None))
    fake.status_script = lambda rid, reply: reply("/segue/status", rid, "idle", "dsp", 0, "")
    fake.result_script = lambda rid, reply: reply("/segue/error", rid, "not_found", "no finished request r1")
    try:
        proc = _client_proc(fake.port, loop)
        out, err = proc.communicate(timeout=30)
    finally:
        fake.close()
    assert proc.returncode == 1 and "error lost" in err and out == ""
    assert len(fake.got("/segue/result")) == 2   # asked twice before giving up


def test_an_engine_that_exits_mid_request_is_noticed_at_once(loop):
    def after(fake, rid, reply):
        threading.Timer(0.5, fake.close).start()   # the port closes: loopback answers with ICMP

    fake = FakeEngine(_accept_then(after))
    t0 = time.monotonic()
    proc = _client_proc(fake.port, loop, "--timeout", "300")
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 3 and "engine_gone" in err and "stopped answering" in err
    assert took < 8, took   # not the 300 s timeout


def test_an_engine_that_hangs_mid_request_is_noticed_within_seconds(loop):
    fake = FakeEngine(_accept_then(lambda fake, rid, reply: None))
    fake.status_script = lambda rid, reply: None   # the port stays open but nothing answers
    try:
        t0 = time.monotonic()
        proc = _client_proc(fake.port, loop, "--timeout", "300")
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        fake.close()
    assert proc.returncode == 3 and "no answer for" in err
    assert len(fake.got("/segue/status")) >= 2    # it probed before giving up
    assert took < 12, took


def test_shutdown_error_reaches_the_user(loop):
    def after(fake, rid, reply):
        reply("/segue/error", rid, "cancelled", "engine shutting down")

    fake = FakeEngine(_accept_then(after))
    try:
        proc = _client_proc(fake.port, loop)
        out, err = proc.communicate(timeout=30)
    finally:
        fake.close()
    assert proc.returncode == 1 and "error cancelled: engine shutting down" in err


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])   # Ctrl-C, a script's kill, a closed terminal
def test_ctrl_c_prints_and_cancels(loop, sig):
    def after(fake, rid, reply):
        def keep_busy():
            while not fake.closed and not fake.got("/segue/cancel"):
                reply("/segue/progress", rid, 0.5, "generate 1/1")
                time.sleep(0.2)
            reply("/segue/error", rid, "cancelled", "cancelled by request")
        threading.Thread(target=keep_busy, daemon=True).start()

    fake = FakeEngine(_accept_then(after))
    try:
        proc = _client_proc(fake.port, loop)
        deadline = time.monotonic() + 20
        while not fake.got("/segue/inpaint") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(getattr(signal, sig))
        out, err = proc.communicate(timeout=30)
    finally:
        fake.close()
    assert proc.returncode == 130
    assert "interrupted: cancelling request r1" in err and "request r1 cancelled" in err
    assert fake.got("/segue/cancel") == [["r1"]]
    no_traceback(subprocess.CompletedProcess([], 0, out, err))


# ---------------------------------------------------------------- missing extras

def test_missing_neural_extras_say_which_extra_to_install(tmp_path):
    fake = tmp_path / "no-torch" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n")
    env = {"PYTHONPATH": f"{fake.parent}{os.pathsep}{ROOT}", "XDG_DATA_HOME": str(tmp_path / "xdg")}
    for argv in (["models", "list"], ["models", "check"],
                 ["serve", "--backend", "sao-small", "--port", str(free_port())]):
        proc = segue(*argv, env=env)
        assert proc.returncode == 1, (argv, proc.stderr)
        assert "missing_extra" in proc.stderr and ".[neural]" in proc.stderr, (argv, proc.stderr)
        no_traceback(proc)


def test_jam_without_the_live_extra_says_how_to_install_it_from_the_repository(tmp_path):
    # Segue is not on PyPI: the hint is an editable install from the checkout, never `pip install 'segue[live]'`
    fake = tmp_path / "no-mido" / "mido"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'mido'\", name='mido')\n")
    proc = segue("jam", "--bpm", "120", env={"PYTHONPATH": f"{fake.parent}{os.pathsep}{ROOT}"})
    assert proc.returncode == 1, proc.stderr
    assert "-e '.[live]'" in proc.stderr and "segue[live]" not in proc.stderr, proc.stderr
    no_traceback(proc)


# ---------------------------------------------------------------- renders

def test_renders_lists_and_prunes_by_age_and_size(tmp_path):
    xdg = tmp_path / "xdg"
    renders = xdg / "segue" / "renders"
    renders.mkdir(parents=True)
    now = time.time()
    for k, (mb, age_h) in enumerate([(1, 0), (2, 1), (3, 30), (4, 200)]):
        p = renders / f"loop-inpaint-r{k}-abc12{k}-v1.wav"   # as engine/pipeline.py names results
        p.write_bytes(b"\0" * (mb * 1_000_000))
        os.utime(p, (now - age_h * 3600, now - age_h * 3600))
    (renders / "notes.txt").write_text("mine")
    env = {"XDG_DATA_HOME": str(xdg)}
    proc = segue("renders", env=env)
    assert proc.returncode == 0
    assert str(renders) in proc.stdout and "4 file(s), 10.0 MB" in proc.stdout
    proc = segue("renders", "--older-than", "7d", "--dry-run", env=env)
    assert "would remove 1 file(s), 4.0 MB" in proc.stdout and (renders / "loop-inpaint-r3-abc123-v1.wav").exists()
    proc = segue("renders", "--older-than", "7d", env=env)
    assert proc.returncode == 0 and not (renders / "loop-inpaint-r3-abc123-v1.wav").exists()
    proc = segue("renders", "--max-size", "3.5M", env=env)   # keeps the newest 1 + 2 MB
    assert proc.returncode == 0 and "removed 1 file(s), 3.0 MB" in proc.stdout
    assert sorted(p.name for p in renders.iterdir()) == ["loop-inpaint-r0-abc120-v1.wav", "loop-inpaint-r1-abc121-v1.wav", "notes.txt"]


def test_renders_never_prunes_a_users_own_wav_in_an_out_folder(tmp_path):
    # --dir points at an --out folder, which may be a DAW project's media folder: only the engine's results go
    out = tmp_path / "project media"
    out.mkdir()
    mine = out / "lead vocal take 3.wav"
    mine.write_bytes(b"\0" * 1000)
    render = out / "lead-inpaint-3f2a9c1b7d0e-0a1b2c-v1.wav"
    render.write_bytes(b"\0" * 1000)
    leftover = out / ".lead-inpaint-x-0a1b2c-v2.wav.deadbeef.part.wav"
    leftover.write_bytes(b"\0" * 10)
    os.utime(leftover, (time.time() - 7200,) * 2)     # a stale temporary; a fresh one may be a write in progress
    proc = segue("renders", "--dir", str(out), "--max-size", "0")
    assert proc.returncode == 0 and "removed 2 file(s)" in proc.stdout, proc.stdout
    assert mine.exists() and not render.exists() and not leftover.exists()


# ---------------------------------------------------------------- demo

def test_serve_on_a_port_in_use_says_an_engine_may_run_there(engine):
    proc = segue("serve", "--port", str(engine.port))
    assert proc.returncode == 1 and f"segue ping --port {engine.port}" in proc.stderr, proc.stderr
    no_traceback(proc)


def test_demo_on_a_port_another_engine_holds_stops_instead_of_using_that_engine(tmp_path, engine):
    # it printed "cannot listen ... Address already in use", then ran the demo on the other engine and said ok
    proc = segue("demo", "--port", str(engine.port), env={"XDG_DATA_HOME": str(tmp_path / "xdg")}, timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert "did not start" in proc.stderr and "without --port" in proc.stderr and "continued" not in proc.stdout
    no_traceback(proc)


def test_demo_ends_with_where_segue_is_and_runnable_next_commands(tmp_path):
    from segue.engine.cli import build_parser

    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    proc = segue("demo", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    tail = proc.stdout.split("Next steps:", 1)[1]
    assert "segue serve" in tail
    cmds = [line.strip() for line in tail.splitlines() if line.strip().startswith("segue ")]
    assert [c.split()[1] for c in cmds] == ["serve", "inpaint", "continue", "renders"]
    loop = tmp_path / "xdg" / "segue" / "demo" / "demo-loop-120bpm.wav"
    assert loop.exists() and str(loop) in tail
    for c in cmds:
        build_parser().parse_args(shlex.split(c)[1:])   # each one parses as written
    assert "The `segue` program is" in tail or "not installed as a program" in tail


def test_a_real_engine_killed_mid_request_ends_the_client_within_seconds(tmp_path, loop):
    eng = start_engine(tmp_path)
    status = tmp_path / "long.status"
    try:
        req = subprocess.Popen([PY, "-m", "segue.engine.cli", "continue", str(loop), "8.0", "32", "--bpm", "120",
                                "--variations", "8", "--port", str(eng.port), "--timeout", "300",
                                "--status-file", str(status)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "state=progress" not in (status.read_text() if status.exists() else ""):
            time.sleep(0.02)
        eng.proc.kill()                      # no goodbye: the port just closes
        t0 = time.monotonic()
        out, err = req.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        stop_engine(eng)
    assert req.returncode == 3, err
    assert "error engine_gone" in err and "segue serve" in err
    assert "code=engine_gone" in status.read_text()
    assert took < 8, took


def test_a_typo_in_a_backend_list_stops_serve(tmp_path):
    """`--backend dsp,sao-smal` is a user mistake (refused at start), not a load failure to serve around."""
    proc = segue("serve", "--backend", "dsp,sao-smal", "--port", str(free_port()),
                 env={"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert proc.returncode == 1
    assert "unknown_backend" in proc.stderr and "'sao-smal'" in proc.stderr and "Traceback" not in proc.stderr


def test_plain_status_names_backends_that_failed_to_load(tmp_path):
    eng = start_engine(tmp_path, "--model", "sao-small=" + str(tmp_path / "no-such-model"), backend="dsp,sao-small")
    try:
        proc = segue("status", "--port", str(eng.port))
        assert proc.returncode == 0, proc.stderr
        assert "failed to load sao-small:" in proc.stdout and "{" not in proc.stdout
    finally:
        stop_engine(eng)


def test_generate_refusal_names_the_backend_that_failed_to_load(tmp_path):
    """dsp cannot generate; when the neural backend that could failed to load, the refusal says so."""
    eng = start_engine(tmp_path, "--model", "sao-small=" + str(tmp_path / "no-such-model"), backend="dsp,sao-small")
    try:
        with eng.client() as c:
            out = c.call("/segue/generate", ["g1", 4.0, "bpm", 120.0])
    finally:
        stop_engine(eng)
    assert out.final.address == "/segue/error" and out.final.args[1] == "unsupported"
    assert "sao-small failed to load" in out.final.args[2], out.final.args


def test_serve_refuses_an_option_no_backend_reads(tmp_path):
    """`--option windw=official` (a typo) was ignored silently: now serve stops at start, naming the keys."""
    import subprocess
    import sys

    for opt, words in (("windw=official", "no backend of this engine has that option"),
                       ("dsp.steps=3", "backend dsp has no option 'steps'"),
                       ("sa3-small.window=official", "this engine runs no backend sa3-small")):
        p = subprocess.run([sys.executable, "-m", "segue.engine.cli", "serve", "--port", "0", "--option", opt],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "bad_option" in p.stderr and words in p.stderr, (opt, p.stderr)
        assert "Traceback" not in p.stderr


def test_option_values_and_precedence():
    """on/off, yes/no switch as the words say (compile=off compiled before); the last repeat wins;
    NAME.KEY beats a plain KEY for that backend in any order."""
    from segue.engine.cli import _backend_options

    got = _backend_options(["steps=4", "sao-small.steps=2", "steps=8", "warmup=off", "prefetch=No",
                            "compile=yes", "window=official"], ["sao-small", "dsp"])
    assert got["sao-small"] == {"steps": 2, "warmup": False, "prefetch": False, "compile": True,
                                "window": "official"}
    assert got["dsp"]["steps"] == 8


def test_serve_names_an_option_value_a_backend_cannot_read(tmp_path):
    """steps=abc: the backend's constructor could not read it; the message names the option, not
    `internal: ValueError`."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    p = subprocess.run([sys.executable, "-m", "segue.engine.cli", "serve", "--port", "0", "--backend", "sao-small",
                        "--option", "steps=abc"], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "bad_option" in p.stderr and "steps=abc" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
