"""Engine reliability (issue 8) on real `segue serve` processes over real UDP on 127.0.0.1.

Every accepted request ends in exactly one final reply, whatever goes wrong:
a reply that cannot be encoded, a shutdown with work queued, requests too big
to render, selections a fraction of a sample past the end, lost datagrams;
token mode neither amplifies nor answers forged traffic.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import numpy as np
import pytest

from segue.bridge.client import request_args
from segue.bridge.protocol import Double, decode, encode
from conftest import groove, read_audio, start_engine, stop_engine, write_wav

# ---- helpers ----------------------------------------------------------------------------------


def udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def collect(s: socket.socket, seconds: float, until=None) -> list[tuple[str, list, int]]:
    """Every reply arriving on `s` within `seconds` (address, args, datagram bytes); stops early when
    until(replies) is true."""
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s.settimeout(max(end - time.monotonic(), 0.001))
        try:
            data = s.recvfrom(65535)[0]
        except (socket.timeout, TimeoutError):
            break
        for address, args in decode(data):
            out.append((address, args, len(data)))
        if until is not None and until(out):
            break
    return out


def finals(replies) -> dict[str, list]:
    got: dict[str, list] = {}
    for address, args, _ in replies:
        if address in ("/segue/done", "/segue/error"):
            got.setdefault(args[0], []).append((address, args))
    return got


@pytest.fixture(scope="module")
def long_source(tmp_path_factory):
    d = tmp_path_factory.mktemp("long")
    return write_wav(d / "long.wav", groove(240.0, 96000), 96000)


# ---- fault 1: a reply that cannot be encoded must not kill the worker ----------------------------


def test_non_utf8_render_folder_then_a_normal_request_succeeds(tmp_path, long_source):
    bad_home = os.fsdecode(bytes(tmp_path) + b"/xdg-\xff\xfe")   # legal on Linux, not UTF-8
    eng = start_engine(tmp_path, env={"XDG_DATA_HOME": bad_home})
    try:
        src = write_wav(tmp_path / "allowed" / "s.wav", groove(10.0, 48000), 48000)
        with eng.client() as c:
            first = c.call("/segue/inpaint", request_args("u1", [str(src), 2.0, 3.0], {"bpm": 120.0}), timeout=60)
            assert first.final.address == "/segue/error", first.final.args   # answered, not silence
            assert first.final.args[1] == "bad_out" and "UTF-8" in first.final.args[2]
            out = c.call("/segue/inpaint", request_args("u2", [str(src), 2.0, 3.0],
                                                        {"bpm": 120.0, "out": str(eng.root / "ok")}), timeout=60)
            assert out.final.address == "/segue/done", out.final.args
            assert read_audio(out.final.args[1])[0].shape == (2, 48000)
            st = c.call("/segue/status", ["st"])
            assert st.final.args[1] == "idle"
    finally:
        stop_engine(eng)


# ---- fault 2: shutdown answers every queued and running request ---------------------------------


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP"])   # SIGHUP: the terminal closed, an SSH session dropped
def test_sigterm_answers_running_and_queued_requests(tmp_path, long_source, sig):
    eng = start_engine(tmp_path)
    try:
        with udp() as s:
            def send(rid):
                s.sendto(encode("/segue/continue", request_args(rid, [str(long_source), 239.0, 64.0],
                                                                {"bpm": 120.0, "variations": 8})), ("127.0.0.1", eng.port))
            send("run")
            seen = collect(s, 30, until=lambda r: any(a == "/segue/progress" for a, _, _ in r))
            assert any(a == "/segue/progress" for a, _, _ in seen), seen   # the worker has taken it
            send("q1")
            send("q2")
            seen += collect(s, 10, until=lambda r: sum(a == "/segue/accepted" for a, _, _ in seen + r) >= 3)
            assert {args[0] for a, args, _ in seen if a == "/segue/accepted"} == {"run", "q1", "q2"}
            eng.proc.send_signal(getattr(signal, sig))
            assert not finals(seen)                                      # all three still unanswered
            seen += collect(s, 20, until=lambda r: len(finals(r)) >= 3)
            assert eng.proc.wait(timeout=20) == 0
            seen += collect(s, 0.5)
        got = finals(seen)
        assert set(got) == {"run", "q1", "q2"}
        for rid, items in got.items():
            assert len(items) == 1, (rid, items)                 # exactly one final reply each
            address, args = items[0]
            assert address == "/segue/error" and args[1:] == ["cancelled", "engine shutting down"], args
    finally:
        stop_engine(eng)


# ---- fault 3: bounded work -------------------------------------------------------------------------


def test_oversized_continue_is_refused_before_acceptance(engine, sources):
    with engine.client() as c:
        out = c.call("/segue/continue", request_args("huge", [str(sources["loop48"]), 10.0, 64.0],
                                                     {"bpm": 20.0, "sig": "32/1", "sr": 192000, "variations": 8}),
                     timeout=30)
    assert out.final.address == "/segue/error" and out.final.args[1] == "too_long", out.final.args
    assert not any(e.address == "/segue/accepted" for e in out.events)
    assert "24576" in out.final.args[2] and "600" in out.final.args[2]   # 6.8 h asked, dsp makes 600 s
    assert engine.alive()


def test_source_longer_than_the_engine_reads_is_refused(tmp_path):
    eng = start_engine(tmp_path, "--max-source-seconds", "5")
    try:
        src = write_wav(tmp_path / "allowed" / "ten.wav", groove(10.0, 22050), 22050)
        with eng.client() as c:
            out = c.call("/segue/inpaint", request_args("long", [str(src), 2.0, 3.0], {"bpm": 120.0}), timeout=30)
        assert out.final.address == "/segue/error" and out.final.args[1] == "too_long"
        assert "max-source-seconds" in out.final.args[2]
    finally:
        stop_engine(eng)


def test_outputs_past_the_wav_limit_are_refused_before_rendering():
    from segue.engine.errors import SegueError
    from segue.engine.validate import check_output_size

    check_output_size(600 * 192000, 2, 4)                    # 10 min at 192 kHz stereo: 879 MiB a file
    with pytest.raises(SegueError) as e:
        check_output_size(2**29, 2, 1)                       # 4 GiB of float32: past what a WAV holds
    assert e.value.code == "too_long" and "4 GiB" in e.value.message
    with pytest.raises(SegueError) as e:
        check_output_size(600 * 192000, 2, 8)                # 8 such variations: 6.9 GiB in memory
    assert e.value.code == "too_long" and "variations" in e.value.message


def test_timeout_stops_a_long_job(tmp_path, long_source):
    eng = start_engine(tmp_path)
    try:
        with eng.client() as c:
            out = c.call("/segue/continue", request_args("slow", [str(long_source), 239.0, 64.0],
                                                         {"bpm": 120.0, "variations": 8, "timeout": 0.5}), timeout=60)
        assert out.final.address == "/segue/error" and out.final.args[1] == "timeout", out.final.args
        assert eng.alive()
    finally:
        stop_engine(eng)


# ---- fault 4: one validation, one tolerance ------------------------------------------------------


@pytest.mark.parametrize("back,sr", [(2400, None), (480, 44100), (4800, 96000), (48000, None)])
def test_selection_ending_a_fraction_of_a_sample_past_the_end(tmp_path_factory, engine, back, sr):
    """A drum-hit-sized (AR fill) or a longer selection ending 0.6 samples past the file: done, exact length."""
    d = tmp_path_factory.mktemp("edge")
    n = 48000 * 8 + 17
    src = write_wav(d / "edge.wav", groove(n / 48000, 48000)[:, :n], 48000)
    start, end = (n - back) / 48000, (n + 0.6) / 48000          # 0.6 samples past the last one
    opts = {"bpm": 120.0} if sr is None else {"bpm": 120.0, "sr": sr}
    with engine.client() as c:
        out = c.call("/segue/inpaint", request_args(f"edge{back}-{sr}", [str(src), start, end], opts), timeout=60)
    assert out.final.address == "/segue/done", out.final.args
    rate = sr or 48000
    y, file_sr = read_audio(out.final.args[1])
    expect = int(np.floor((end - start) * rate + 0.5))
    assert file_sr == rate and y.shape == (2, expect) and np.all(np.isfinite(y))
    with engine.client() as c:   # a whole millisecond past the end is still refused
        out = c.call("/segue/inpaint", request_args("edge2", [str(src), start, (n + 48) / 48000], {"bpm": 120.0}))
    assert out.final.address == "/segue/error" and out.final.args[1] == "bad_region"


# ---- fault 7: token mode -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def token_engine(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("token")
    (tmp / "allowed" / "sources").mkdir(parents=True)
    eng = start_engine(tmp, "--token", "s3cret", "--source-dir", str(tmp / "allowed" / "sources"))
    eng.src = write_wav(tmp / "allowed" / "sources" / "in.wav", groove(8.0, 22050), 22050)
    eng.outside = write_wav(tmp / "outside.wav", groove(8.0, 22050), 22050)
    yield eng
    stop_engine(eng)


def _bundle(messages: list[bytes]) -> bytes:
    out = b"#bundle\x00" + (1).to_bytes(8, "big")
    for m in messages:
        out += len(m).to_bytes(4, "big") + m
    return out


def test_unauthenticated_bundle_gets_at_most_one_small_reply(token_engine):
    eng = token_engine
    one = encode("/segue/bogus", ["x", "reply_port", 9])          # 32 bytes: an unknown address, no token
    bundle = _bundle([one] * ((65000 - 16) // (len(one) + 4)))
    assert len(bundle) > 60000
    with udp() as s:
        s.sendto(bundle, ("127.0.0.1", eng.port))
        replies = collect(s, 3.0)
    count, size = len(replies), sum(b for _, _, b in replies)
    print(f"unauthenticated {len(bundle)}-byte bundle of {(len(bundle) - 16) // (len(one) + 4)} messages: "
          f"{count} reply, {size} bytes")
    assert count <= 1 and size <= 128, replies
    if replies:
        assert replies[0][1] == ["", "unauthorized", "missing or wrong token"]
    # An unknown address or bad option without the token learns nothing but `unauthorized`.
    with udp() as s:
        s.sendto(encode("/segue/explode", ["y"]), ("127.0.0.1", eng.port))
        s.sendto(encode("/segue/ping", ["z", "bogus", 1]), ("127.0.0.1", eng.port))
        replies = collect(s, 2.0)
    assert all(args[:2] == ["", "unauthorized"] for _, args, _ in replies) and len(replies) <= 2


def test_authenticated_bundle_is_capped(token_engine):
    eng = token_engine
    ping = encode("/segue/ping", ["p", "token", "s3cret"])
    with udp() as s:
        s.sendto(_bundle([ping] * 17), ("127.0.0.1", eng.port))
        over = collect(s, 2.0)
        s.sendto(_bundle([ping] * 3), ("127.0.0.1", eng.port))
        ok = collect(s, 2.0, until=lambda r: len(r) >= 3)
    assert len(over) == 1 and over[0][1][1] == "bad_packet" and "16" in over[0][1][2]
    assert [a for a, _, _ in ok] == ["/segue/pong"] * 3


def test_token_mode_replies_only_to_sender_or_loopback(token_engine):
    with token_engine.client(token="s3cret") as c:
        out = c.call("/segue/ping", ["rh", "reply_host", "192.0.2.10"])
    assert out.final.args[1] == "bad_reply_host" and "sender" in out.final.args[2]


def test_token_mode_sources_must_lie_under_source_dir(token_engine):
    eng = token_engine
    with eng.client(token="s3cret") as c:
        outside = c.call("/segue/inpaint", request_args("o1", [str(eng.outside), 2.0, 3.0], {"bpm": 120.0}), timeout=60)
        missing = c.call("/segue/inpaint", request_args("o2", [str(eng.outside.parent / "nope.wav"), 2.0, 3.0],
                                                        {"bpm": 120.0}), timeout=60)
        escape = c.call("/segue/inpaint", request_args("o3", [str(eng.src.parent / ".." / "x.wav"), 2.0, 3.0],
                                                       {"bpm": 120.0}), timeout=60)
        inside = c.call("/segue/inpaint", request_args("i1", [str(eng.src), 2.0, 3.0], {"bpm": 120.0}), timeout=60)
    assert outside.final.args[1] == "source_not_allowed", outside.final.args
    # an existing and a missing file get the same answer: nothing can be probed
    assert missing.final.args[1:] == outside.final.args[1:]
    assert escape.final.args[1] == "source_not_allowed"
    assert inside.final.address == "/segue/done", inside.final.args


# ---- fault 8: a lost done is not a lost result ---------------------------------------------------


def test_result_can_be_asked_again_after_the_done_was_lost(engine, sources):
    with udp() as lossy:   # sends the request, never reads: every reply to it is dropped
        lossy.sendto(encode("/segue/inpaint", request_args("lost1", [str(sources["loop48"]), 4.0, 5.0],
                                                           {"bpm": 120.0})), ("127.0.0.1", engine.port))
        with engine.client() as c:
            deadline = time.monotonic() + 60
            while True:   # while it runs the answer is /segue/accepted; then the final reply
                c.send("/segue/result", ["lost1"])
                out = c.receive(5.0)
                if out.address != "/segue/accepted" or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
    assert out.address == "/segue/done", out.args
    y, sr = read_audio(out.args[1])
    assert sr == 48000 and y.shape == (2, 48000)
    with engine.client() as c:                       # asked again: the same final message
        again = c.call("/segue/result", ["lost1"])
        unknown = c.call("/segue/result", ["never-sent"])
    assert again.final.address == "/segue/done" and again.final.args == out.args
    assert unknown.final.address == "/segue/error" and unknown.final.args[1] == "not_found"


def test_result_of_an_error_is_the_same_error(engine):
    with engine.client() as c:
        first = c.call("/segue/inpaint", request_args("err1", ["/nonexistent/x.wav", 1.0, 2.0], {}))
        again = c.call("/segue/result", ["err1"])
    assert first.final.address == again.final.address == "/segue/error"
    assert again.final.args == first.final.args and first.final.args[1] == "source_not_found"


# ---- protocol additions: regions and hit --------------------------------------------------------

REGION_CASES = [
    ("not start:end", "1.5-2.0", "START:END"),
    ("outside the selection", "0.5:1.5", "outside the selection"),
    ("overlapping", "1.2:1.6,1.5:1.8", "before the previous one ends"),
    ("unsorted", "1.6:1.8,1.2:1.4", "before the previous one ends"),
    ("empty region", "1.5:1.5", "before end"),
    ("empty list", " ", "empty"),
    ("not a number", "a:b", "START:END"),
]


@pytest.mark.parametrize("name,regions,words", REGION_CASES, ids=[c[0] for c in REGION_CASES])
def test_regions_validation(engine, sources, name, regions, words):
    with engine.client() as c:
        out = c.call("/segue/inpaint", request_args("r", [str(sources["loop48"]), 1.0, 2.0],
                                                    {"bpm": 120.0, "regions": regions}))
    assert out.final.address == "/segue/error" and out.final.args[1] == "bad_option", out.final.args
    assert words in out.final.args[2]
    assert not any(e.address == "/segue/accepted" for e in out.events)


def test_regions_and_hit_apply_to_inpaint_only_and_hit_is_checked(engine, sources):
    with engine.client() as c:
        cont = c.call("/segue/continue", request_args("rc", [str(sources["loop48"]), 10.0, 1.0],
                                                      {"bpm": 120.0, "regions": "1:2"}))
        hit = c.call("/segue/inpaint", request_args("rh", [str(sources["loop48"]), 1.0, 1.05], {"hit": "smash"}))
        ok = c.call("/segue/inpaint", request_args("rok", [str(sources["loop48"]), 8.0, 10.0],
                                                   {"bpm": 120.0, "regions": "8.5:9.0,9.25:9.5", "hit": "remove"}),
                    timeout=60)
    assert cont.final.args[1] == "bad_option" and "inpaint only" in cont.final.args[2]
    assert hit.final.args[1] == "bad_option" and "replace or remove" in hit.final.args[2]
    assert ok.final.address == "/segue/done", ok.final.args   # the output still covers [start, end)
    assert read_audio(ok.final.args[1])[0].shape == (2, 96000)


def test_regions_reach_the_task_in_samples():
    from segue.bridge.protocol import parse
    from segue.engine.audio_io import Source
    from segue.engine.validate import make_task

    msg = parse("/segue/inpaint", ["t", "/a.wav", Double(1.0), Double(2.0), "regions", "1.25:1.5,1.75:2.0",
                                   "hit", "remove"], ("127.0.0.1", 5))
    audio = np.zeros((2, 48000 * 3), np.float32)
    plan = make_task(msg.request, Source("/a.wav", audio, 48000, 48000, "k"))
    assert plan.task.regions == [(60000, 12000), (84000, 12000)] and plan.task.hit == "remove"
    assert (plan.task.start_sample, plan.task.frames) == (48000, 48000)


# ---- random sequences of valid requests, cancels and a shutdown ---------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

OPS = st.lists(st.one_of(
    st.tuples(st.just("inpaint"), st.floats(0.2, 6.0), st.floats(0.01, 1.5), st.integers(1, 3)),
    st.tuples(st.just("continue"), st.floats(0.5, 8.0), st.floats(0.25, 8.0), st.integers(1, 8)),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("result"), st.integers(0, 30)),
    st.tuples(st.just("sleep"), st.floats(0.0, 0.4)),
    st.tuples(st.just("status")),
), min_size=1, max_size=14)


@pytest.fixture(scope="module")
def seq_source(tmp_path_factory):
    d = tmp_path_factory.mktemp("seq")
    return write_wav(d / "seq.wav", groove(8.0, 44100), 44100)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(ops=OPS, wait=st.floats(0.0, 1.0))
def test_every_accepted_request_ends_in_exactly_one_final_reply(tmp_path_factory, seq_source, ops, wait):
    tmp = tmp_path_factory.mktemp("seqrun")
    eng = start_engine(tmp, "--queue-size", "3")
    ids: list[str] = []
    try:
        with udp() as s:
            for k, op in enumerate(ops):
                to = ("127.0.0.1", eng.port)
                if op[0] == "inpaint":
                    ids.append(f"j{k}")
                    s.sendto(encode("/segue/inpaint", request_args(ids[-1], [str(seq_source), op[1], op[1] + op[2]],
                                                                   {"variations": op[3]})), to)
                elif op[0] == "continue":
                    ids.append(f"j{k}")
                    s.sendto(encode("/segue/continue", request_args(ids[-1], [str(seq_source), op[1], op[2]],
                                                                    {"bpm": 120.0, "variations": op[3]})), to)
                elif op[0] in ("cancel", "result") and ids:
                    s.sendto(encode(f"/segue/{op[0]}", [ids[op[1] % len(ids)]]), to)
                elif op[0] == "status":
                    s.sendto(encode("/segue/status", ["st"]), to)
                elif op[0] == "sleep":
                    time.sleep(op[1])
            seen = collect(s, wait)
            eng.proc.send_signal(signal.SIGTERM)
            assert eng.proc.wait(timeout=30) == 0
            seen += collect(s, 0.5)
    finally:
        stop_engine(eng)
    # Replies to /segue/result re-send a final message: count only what the request itself got,
    # i.e. drop the copies (a result reply repeats a final that arrived before it, or says accepted).
    accepted, ends = set(), {}
    result_copies = sum(1 for op in ops if op[0] == "result")
    for address, args, _ in seen:
        if address == "/segue/accepted":
            accepted.add(args[0])
        elif address in ("/segue/done", "/segue/error") and args[0] in ids:
            if address == "/segue/error" and args[1] == "not_found":
                continue   # the answer to a cancel or result naming a finished request, not a final reply
            ends.setdefault(args[0], []).append((address, tuple(args)))
    extra = 0
    for rid in ids:
        got = ends.get(rid, [])
        assert got, f"{rid} never ended ({'accepted' if rid in accepted else 'not accepted'})"
        assert len(set(got)) == 1, f"{rid} ended in two different ways: {got}"   # copies are identical
        extra += len(got) - 1
        if rid not in accepted:    # refused before acceptance: busy (queue of 3) is the only reason here
            assert got[0][1][1] == "busy", got
    assert extra <= result_copies
