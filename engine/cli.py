"""`segue`: the engine (`segue serve`) and its command-line client.

Client subcommands print result paths on stdout; on stderr the request id, then
a progress bar on a terminal or one line per stage off it. They exit 0 on
success, 1 on an error reply, 2 on usage errors and 3 when no engine answers or
the engine goes away mid-request. `--status-file` mirrors every event into a
small key=value file for callers that cannot read a pipe (the REAPER scripts).
`segue renders` lists and prunes the results; `segue demo` is the README's first
command. Messages name command-line flags (`--bpm`), not protocol options.
"""

from __future__ import annotations

import argparse
import errno
import logging
import math
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

from . import __version__
from .errors import SegueError


def port_number(text: str) -> int:
    """argparse type: a UDP port, 1-65535."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (a whole number 1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside 1-65535")
    return port


def listen_port(text: str) -> int:
    """argparse type: a port to listen on, 0-65535 (0: any free port)."""
    if text.strip() == "0":
        return 0
    return port_number(text)


def _number(lo: float | None = None, hi: float | None = None, what: str = "number", integer: bool = False,
            above: bool = False):
    """argparse type for a finite number in [lo, hi] (or (lo, hi] with above=True)."""

    def parse(text: str):
        try:
            v = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole number' if integer else 'number'}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if lo is not None and (v <= lo if above else v < lo) or hi is not None and v > hi:
            show = (lambda x: str(int(x))) if integer else (lambda x: f"{x:g}")  # 2147483647, not 2.14748e+09
            low = f"above {show(lo)}" if above else f"at least {show(lo)}"
            raise argparse.ArgumentTypeError(f"{text} must be {low}" + (f" and at most {show(hi)}" if hi else ""))
        return v

    parse.__name__ = what
    return parse


def request_id(text: str) -> str:
    """argparse type: a request id as the protocol takes it, 1 to MAX_ID (128) characters."""
    from ..bridge.protocol import MAX_ID

    if not text:
        raise argparse.ArgumentTypeError("a request id cannot be empty")
    if len(text) > MAX_ID:
        raise argparse.ArgumentTypeError(f"a request id is at most {MAX_ID} characters, this one has {len(text)}")
    return text


def _env_port() -> int:
    """$SEGUE_PORT when it holds a valid port (scripts and tests set one), else 9137."""
    try:
        return port_number(os.environ.get("SEGUE_PORT", ""))
    except argparse.ArgumentTypeError:
        return 9137


DEFAULT_PORT = _env_port()


# ---------------------------------------------------------------- serve

def cmd_serve(args) -> int:
    # numpy's BLAS threads cost more than they give on the dsp backend's small products
    # (measured ~10 ms per call on a busy 2-core machine); must be set before numpy loads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from segue.bridge.osc_server import OscServer

    from .engine import Engine
    from .paths import OutputRoots, SourceDirs

    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        names = _backend_names(args.backend)
        backends, failed = _load_backends(names, args)
        roots = OutputRoots(extra=args.allow_dir or [])
        source_dirs = SourceDirs(args.source_dir or []) if (args.source_dir or args.token) else None
        default = next(n for n in names if n in backends)
        engine = Engine(backends, roots, default=default, failed=failed, queue_size=args.queue_size,
                        timeout=args.timeout, max_source_seconds=args.max_source_seconds, source_dirs=source_dirs)
        server = OscServer(engine, args.host, args.port, args.token)
    except SegueError as e:
        print(f"segue serve: {e.code}: {e.message}", file=sys.stderr)
        return 1
    except OSError as e:
        hint = ""
        if e.errno == errno.EADDRINUSE:  # most often an engine already started in another terminal
            hint = f" (is an engine already running there? `segue ping --port {args.port}`; or pick another --port)"
        print(f"segue serve: cannot listen on {args.host}:{args.port}: {e.strerror}{hint}", file=sys.stderr)
        return 1
    engine.start()

    def shutdown(*_):
        server.stop()   # the loop ends; the socket stays open for the final replies below

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if hasattr(signal, "SIGHUP"):   # a closed terminal or a dropped SSH session: answer everything, then stop
        signal.signal(signal.SIGHUP, shutdown)
    host, port = server.address
    loaded = ", ".join(backends) + (f"; failed to load: {', '.join(failed)}" if failed else "")
    print(f"segue {__version__} engine ready on {host}:{port} (backend {default}; loaded {loaded}; "
          f"outputs in {roots.default})", flush=True)
    try:
        server.serve_forever()
    finally:
        engine.stop()     # every queued and running request hears "engine shutting down" ...
        server.drain()    # ... and so does every request still waiting in the socket ...
        server.close()    # ... before the socket closes
    return 0


def _backend_names(text: str) -> list[str]:
    """--backend a,b,c -> ["a", "b", "c", "dsp"]: dsp is always there, the first listed is the default."""
    names = []
    for name in (n.strip() for n in text.split(",")):
        if name and name not in names:
            names.append(name)
    if not names:
        raise SegueError("bad_option", "--backend names no backend")
    if "dsp" not in names:
        names.append("dsp")
    return names


def _per_backend(values: list[str] | None, names: list[str]) -> dict[str, str]:
    """--model NAME=VALUE for one backend; a plain VALUE goes to the first listed backend."""
    out: dict[str, str] = {}
    for value in values or []:
        name, sep, rest = value.partition("=")
        if sep and name in names:
            out[name] = rest
        else:
            out.setdefault(names[0], value)
    return out


def _load_backends(names: list[str], args) -> tuple[dict, dict]:
    """Create and load each backend. With one backend asked for, its failure stops the engine (exit 1);
    with several, a failure is logged and reported in status, and the others serve."""
    from .backends import BackendConfig, create
    from .backends.base import Options

    log = logging.getLogger("segue")
    models = _per_backend(args.model if isinstance(args.model, list) else [args.model] if args.model else [], names)
    encoders = _per_backend(args.text_encoder if isinstance(args.text_encoder, list)
                            else [args.text_encoder] if args.text_encoder else [], names)
    options = _backend_options(args.option or [], names)
    listed = [n.strip() for n in args.backend.split(",") if n.strip()]
    from .backends import REGISTRY

    unknown = [n for n in names if n not in REGISTRY]
    if unknown:   # a typo is the user's mistake, not a load failure to serve around
        raise SegueError("unknown_backend", f"no backend named {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(sorted(REGISTRY))}")
    backends, failed = {}, {}
    configs = {name: BackendConfig(model=models.get(name), text_encoder=encoders.get(name), device=args.device,
                                   precision=args.precision, extra=Options(options.get(name, {})))
               for name in names}
    made = {}
    for name in names:        # constructors read their options: a key none read is refused before any load
        try:
            made[name] = create(name, configs[name])
        except (ValueError, TypeError) as e:   # a value the backend cannot read (steps=abc)
            given = ", ".join(f"{k}={v}" for k, v in configs[name].extra.items()) or "none"
            raise SegueError("bad_option", f"backend {name} cannot use its --option values ({e}); "
                             f"given: {given}") from None
        except Exception:
            made[name] = None      # the load loop below reports it
    _check_options(args.option or [], {n: configs[n].extra for n in names if made[n] is not None}, names,
                   unchecked=[n for n in names if made[n] is None])
    for name in names:
        try:
            log.info("loading backend %s", name)
            backend = made[name] or create(name, configs[name])
            backend.load()
        except Exception as e:
            hint = missing_extra_message(e) if isinstance(e, ModuleNotFoundError) else None
            if isinstance(e, SegueError):
                code, message = e.code, e.message
            elif hint:
                code, message = "missing_extra", f"backend {name}: {hint}"
            else:
                code, message = "internal", f"{type(e).__name__}: {e}"
            if name == "dsp" or len(listed) == 1:
                raise SegueError(code, message) from e
            log.error("backend %s failed to load: %s: %s", name, code, message)
            failed[name] = f"{code}: {message}"
            continue
        backends[name] = backend
    return backends, failed


def _check_options(pairs: list[str], read: dict, names: list[str], unchecked: list[str] = ()) -> None:
    """Refuse `--option` keys no backend reads: `NAME.KEY` when backend NAME did not read KEY (or the
    engine runs no NAME), a plain KEY when none of the backends did. `read` maps each created backend
    to its Options; `names` are all the backends asked for; `unchecked` those that could not be
    created (their load reports why; a plain key may be theirs, so it is not refused)."""
    for pair in pairs:
        key = pair.partition("=")[0]
        target, dot, short = key.partition(".")
        if dot and not target:
            raise SegueError("bad_option", f"--option {key}: NAME.KEY needs a backend name before the dot")
        if dot and target not in read:
            if target not in names:
                raise SegueError("bad_option", f"--option {key}: this engine runs no backend {target} "
                                 f"({', '.join(names)})")
            continue                # it failed to construct: the load reports that
        if dot:
            if short not in read[target].read:
                known = ", ".join(sorted(read[target].read)) or "none"
                raise SegueError("bad_option", f"--option {key}: backend {target} has no option {short!r} "
                                 f"(its options: {known})")
        elif not unchecked and not any(key in o.read for o in read.values()):
            known = "; ".join(f"{n}: {', '.join(sorted(o.read)) or 'none'}" for n, o in read.items())
            raise SegueError("bad_option", f"--option {key}: no backend of this engine has that option "
                             f"({known}); NAME.KEY sets one backend's option")


_WORDS = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}


def _option_value(value: str):
    """'8' -> 8, '0.5' -> 0.5, 'true'/'on'/'yes' -> True, 'false'/'off'/'no' -> False, else the text."""
    low = value.strip().lower()
    if low in _WORDS:
        return _WORDS[low]
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _backend_options(pairs: list[str], names: list[str] | None = None) -> dict:
    """--option KEY=VALUE (every backend) or NAME.KEY=VALUE (one backend) -> {name: BackendConfig.extra},
    values parsed (_option_value). A repeated key: the last one given wins; NAME.KEY beats a plain KEY
    for backend NAME whatever the order. Without `names`, the flat dict of KEY=VALUE pairs."""
    flat: dict = {}
    targeted: dict[str, dict] = {n: {} for n in names or []}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SegueError("bad_option", f"--option {pair!r} must look like KEY=VALUE")
        parsed = _option_value(value)
        target, dot, short = key.partition(".")
        if dot and target in targeted:
            targeted[target][short] = parsed
        else:
            flat[key] = parsed
    if names is None:
        return flat
    return {n: {**flat, **targeted[n]} for n in names}


# ---------------------------------------------------------------- client

# Engine words -> command-line words, so messages name the flag to fix ("--bpm", not "option bpm").
_OPTION_WORDS = ("bpm", "sig", "sr", "downbeat", "prompt", "seed", "variations", "out", "backend", "timeout",
                 "regions", "hit", "token")


def cli_message(message: str) -> str:
    """An engine message in the client's terms: `the option bpm` -> `--bpm`, `bpm 500 is` -> `--bpm 500 is`."""
    message = re.sub(r"\b(?:the )?option (\w+)", lambda m: "--" + m.group(1).replace("_", "-"), message)
    first, _, rest = message.partition(" ")
    if first in _OPTION_WORDS:
        return "--" + message
    if first in ("start", "end", "at", "bars"):  # the positional arguments, as the usage line names them
        message = first.upper() + " " + re.sub(r"\b(end|start)\b", lambda m: m.group(1).upper(), rest)
    if message.startswith("time signature"):
        message = "--sig" + message[len("time signature"):]
    return message


class StatusFile:
    """key=value mirror of a request's events, rewritten atomically.

    The last stage and fraction are kept in every later write (done included), so a
    poller that reads the file only at the end still sees what the engine did.
    """

    def __init__(self, path: str | None, rid: str):
        self.path = path
        self.rid = rid
        self.stage = ""

    def write(self, **fields) -> None:
        if "stage" in fields:
            self.stage = fields["stage"]
        elif self.stage:
            fields["stage"] = self.stage
        if not self.path:
            return
        lines = [f"id={self.rid}", f"pid={os.getpid()}"]  # lets a poller notice a client that died
        for k, v in fields.items():
            for item in (v if isinstance(v, list) else [v]):
                lines.append(f"{k}={str(item).replace(chr(10), ' ')}")
        tmp = f"{self.path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.path)


class Progress:
    """Progress on stderr: a redrawn bar on a terminal, plain lines otherwise.

    On a terminal the bar line is fitted to the terminal's width; a stage too long
    for it is also printed whole on its own line, so nothing (such as the estimated
    tempo's confidence) is lost. Off a terminal (a log, a pipe) one line per new
    stage and per 10 % step. `finish()` draws 100 %.
    """

    def __init__(self, enabled: bool, tty: bool):
        self.enabled, self.tty = enabled, tty
        self.drawn = False
        self.stage = None
        self.step = -1

    def draw(self, fraction: float, stage: str) -> None:
        if not self.enabled:
            return
        fraction = min(max(float(fraction), 0.0), 1.0)
        new_stage = stage != self.stage
        self.stage = stage
        if not self.tty:
            step = int(fraction * 10)
            if new_stage or step > self.step:
                self.step = step
                sys.stderr.write(f"progress {fraction * 100:5.1f}% {stage}\n")
                sys.stderr.flush()
            return
        cols = shutil.get_terminal_size((80, 24)).columns
        width = 24
        full = int(round(fraction * width))
        head = f"[{'#' * full}{'.' * (width - full)}] {fraction * 100:5.1f}% "
        room = max(cols - len(head) - 1, 10)
        if len(stage) > room:
            if new_stage:  # the whole text once, above the bar
                sys.stderr.write("\r" + " " * (cols - 1) + "\r" + stage + "\n")
            stage = stage[:room - 3] + "..."
        sys.stderr.write("\r" + head + f"{stage:<{room}}")
        sys.stderr.flush()
        self.drawn = True

    def say(self, text: str) -> None:
        """A line of its own (above the bar on a terminal)."""
        if not self.enabled:
            return
        if self.drawn:
            sys.stderr.write("\r" + " " * (shutil.get_terminal_size((80, 24)).columns - 1) + "\r")
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def finish(self, stage: str = "done") -> None:
        if self.enabled and (self.drawn or not self.tty):
            self.draw(1.0, stage)
        self.end()

    def end(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.drawn = False


def _options(args) -> dict:
    opts = {}
    for key in ("bpm", "sig", "sr", "downbeat", "prompt", "seed", "variations", "out", "backend", "regions", "hit"):
        value = getattr(args, key, None)
        if value is not None:
            opts[key] = value
    if opts.get("out"):
        opts["out"] = os.path.abspath(os.path.expanduser(opts["out"]))
    return opts


def _port_flag(args) -> str:
    flags = ""
    if args.host not in ("127.0.0.1",):
        flags += f" --host {args.host}"
    if args.port != DEFAULT_PORT:
        flags += f" --port {args.port}"
    return flags


def _client(args):
    """EngineClient for the args, or (None, message) for a bad host/port/token."""
    from segue.bridge.client import EngineClient

    try:
        return EngineClient(args.host, args.port, args.token), None
    except (ValueError, OSError) as e:
        return None, str(e)


def _cancel_after_interrupt(args, rid: str) -> None:
    """Ctrl-C: cancel the request on the engine and wait briefly for its `cancelled`."""
    client, _ = _client(args)
    if client is None:
        return
    with client:
        try:
            client.send("/segue/cancel", [rid])
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                reply = client.receive(deadline - time.monotonic())
                if reply and reply.args and reply.args[0] == rid and reply.address == "/segue/error":
                    return
        except OSError:
            return


def _interrupt_on_signals() -> None:
    """SIGTERM and SIGHUP (a script killing its client, a closed terminal) stop a waiting client as
    Ctrl-C does, so the request it sent is cancelled rather than left running for nobody."""
    def interrupt(*_):
        raise KeyboardInterrupt
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), interrupt)


def _run_request(args, address: str, positional: list, options: dict) -> int:
    from segue.bridge.client import EngineGone, NoEngine, new_id, request_args

    rid = args.id or new_id()
    status = StatusFile(args.status_file, rid)
    quiet = getattr(args, "quiet", False)
    work = address in ("/segue/inpaint", "/segue/continue", "/segue/generate")
    bar = Progress(enabled=work and not quiet, tty=sys.stderr.isatty())
    try:
        status.write(state="sent")
    except OSError as e:
        print(f"segue {args.command}: error: cannot write --status-file {args.status_file}: {e.strerror}",
              file=sys.stderr)
        return 2
    client, problem = _client(args)
    if client is None:
        status.write(state="error", code="bad_request", message=problem)
        print(f"error bad_request: {problem}", file=sys.stderr)
        return 2
    if work and not quiet:
        print(f"request {rid} sent to {args.host}:{args.port} (cancel it with: segue cancel {rid}{_port_flag(args)})",
              file=sys.stderr, flush=True)

    def on_event(reply):
        a = reply.args
        if reply.kind == "accepted":
            stage = f"queued at position {a[1]}" if a[1] else "accepted, starting"
            status.write(state="accepted", fraction=0.0, stage=stage)
            bar.draw(0.0, stage)
        elif reply.kind == "progress":
            status.write(state="progress", fraction=f"{a[1]:.4f}", stage=a[2])
            bar.draw(a[1], a[2])

    _interrupt_on_signals()
    try:
        with client:
            outcome = client.call(address, request_args(rid, positional, options), timeout=args.timeout,
                                  on_event=on_event)
    except NoEngine as e:
        bar.end()
        status.write(state="error", code="no_engine", message=str(e))
        print(f"error no_engine: {e}", file=sys.stderr)
        return 3
    except EngineGone as e:
        bar.end()
        status.write(state="error", code="engine_gone", message=str(e))
        print(f"error engine_gone: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        bar.end()
        if work:
            print(f"interrupted: cancelling request {rid} ...", file=sys.stderr, flush=True)
            _cancel_after_interrupt(args, rid)
            print(f"request {rid} cancelled", file=sys.stderr)
        status.write(state="error", code="cancelled", message="interrupted (Ctrl-C or a signal)")
        return 130
    final = outcome.final
    if final.address == "/segue/error":
        bar.end()
        _, code, message = (final.args + ["", "", ""])[:3]
        message = cli_message(str(message))
        if code == "unauthorized":   # the engine's reply stays tiny (no amplification); the hint is ours
            message += " (this engine runs with --token: pass the same --token SECRET)"
        status.write(state="error", code=code, message=message)
        print(f"error {code}: {message}", file=sys.stderr)
        return 1
    if final.address == "/segue/done":
        bar.finish()
        paths = [final.args[1]] + list(final.args[4:])
        status.write(state="done", fraction=1, seconds=repr(final.args[2]), sr=final.args[3], path=paths)
        if outcome.recovered and not quiet:
            print("(the engine's first reply was lost; recovered with /segue/result)", file=sys.stderr)
        print("\n".join(paths))
        return 0
    if final.address == "/segue/pong":
        status.write(state="done", version=final.args[1], backend=final.args[2])
        print(f"pong: engine {final.args[1]} on {args.host}:{args.port}, backend {final.args[2]}")
        return 0
    if final.address == "/segue/status":
        a = final.args
        status.write(state="done", engine_state=a[1], backend=a[2], queued=a[3], running=a[4])
        print(f"state {a[1]}, backend {a[2]}, queued {a[3]}, running {a[4] or '-'}")
        for extra in a[5:]:
            if getattr(args, "detail", True):
                print(extra)   # the detail JSON stays one line: scripts and bench/ parse it
            print(*_failed_backend_lines(extra), sep="\n", end="")   # always: a missing model is news
        return 0
    print(f"error protocol: unexpected reply {final.address}", file=sys.stderr)
    return 1


def _failed_backend_lines(detail: object) -> list[str]:
    """`failed to load NAME: code: message` for each backend the detail JSON lists as failed (the
    JSON alone buries a missing model in one long line)."""
    import json

    try:
        failed = json.loads(detail).get("failed") or {} if isinstance(detail, str) else {}
    except (ValueError, AttributeError):
        return []
    return [f"failed to load {name}: {why}\n" for name, why in failed.items()]


def _usage_error(args, text: str) -> int:
    status = StatusFile(getattr(args, "status_file", None), args.id or "")
    status.write(state="error", code="bad_option", message=text)
    print(f"segue {args.command}: error: {text}", file=sys.stderr)
    return 2


def _check_regions(text: str, start: float, end: float) -> str | None:
    """What is wrong with a --regions value ("s1:e1,s2:e2", seconds inside [START, END)), or None."""
    spans = []
    for part in text.split(","):
        a, sep, b = part.strip().partition(":")
        try:
            s0, s1 = float(a), float(b)
        except ValueError:
            return f"--regions {text!r}: {part.strip()!r} is not START:END in seconds (e.g. 4.0:4.5,5.0:5.25)"
        if not (sep and math.isfinite(s0) and math.isfinite(s1) and s0 < s1):
            return f"--regions {text!r}: {part.strip()!r} must be START:END with START < END"
        if s0 < start or s1 > end:
            return f"--regions {text!r}: {part.strip()!r} lies outside START..END ({start:g}-{end:g} s)"
        spans.append((s0, s1))
    spans.sort()
    if any(b[0] < a[1] for a, b in zip(spans, spans[1:])):
        return f"--regions {text!r}: the regions overlap"
    return None


def cmd_inpaint(args) -> int:
    if args.regions is not None:
        problem = _check_regions(args.regions, args.start, args.end)
        if problem:
            return _usage_error(args, problem)
    return _run_request(args, "/segue/inpaint", [os.path.abspath(os.path.expanduser(args.src)),
                                                 float(args.start), float(args.end)], _options(args))


def cmd_continue(args) -> int:
    if args.bpm is None:
        return _usage_error(args, "--bpm is required for continue: the tempo (quarter notes per minute) decides "
                                  "how long BARS bars are, e.g. --bpm 120")
    return _run_request(args, "/segue/continue", [os.path.abspath(os.path.expanduser(args.src)),
                                                  float(args.at), float(args.bars)], _options(args))


def _engine_backend(args) -> str | None:
    """The backend a request without --backend goes to (the engine's first), or None if unknown."""
    from segue.bridge.client import NoEngine

    client, _ = _client(args)
    if client is None:
        return None
    with client:
        try:
            out = client.call("/segue/ping", ["segue-cli-backend?"], answer_within=3.0)
        except (NoEngine, OSError):
            return None
    if out.final.address == "/segue/pong" and len(out.final.args) > 2:
        return str(out.final.args[2])
    return None


def cmd_generate(args) -> int:
    # Say first what matters most: a backend that cannot generate at all.
    backend = args.backend or _engine_backend(args)
    if backend == "dsp":
        msg = ("backend dsp cannot generate (it only reworks audio you give it); start an engine with a neural "
               "backend, e.g. `segue serve --backend sao-small` (see docs/sao-small.md), or pick one with --backend")
        StatusFile(args.status_file, args.id or "").write(state="error", code="unsupported", message=msg)
        print(f"error unsupported: {msg}", file=sys.stderr)
        return 1
    if args.bpm is None:
        return _usage_error(args, "--bpm is required for generate: the tempo (quarter notes per minute) decides "
                                  "how long BARS bars are, e.g. --bpm 120")
    return _run_request(args, "/segue/generate", [float(args.bars)], _options(args))


def cmd_ping(args) -> int:
    if args.wait > 0:  # for scripts: wait until an engine that is starting answers
        from segue.bridge.client import NoEngine

        client, problem = _client(args)
        if client is None:
            print(f"error bad_request: {problem}", file=sys.stderr)
            return 2
        deadline = time.monotonic() + args.wait
        with client:
            while time.monotonic() < deadline:
                try:
                    client.call("/segue/ping", ["segue-wait"], answer_within=min(1.0, deadline - time.monotonic()))
                    break
                except NoEngine:
                    time.sleep(0.2)
    return _run_request(args, "/segue/ping", [], {})


def cmd_status(args) -> int:
    # Detail is always asked (it costs the engine nothing): plain `segue status` still names backends
    # that failed to load; the JSON itself is printed with --detail only.
    return _run_request(args, "/segue/status", [], {"detail": 1})


def cmd_cancel(args) -> int:
    """Send /segue/cancel, then a ping: the engine answers the cancel only when the id is unknown
    (error not_found); the pong after it says the engine is there and took the cancel."""
    client, problem = _client(args)
    if client is None:
        print(f"error bad_request: {problem}", file=sys.stderr)
        return 2
    # the probe's own id stays short: the request id may already use all MAX_ID characters
    probe = f"cancel-ping-{os.urandom(6).hex()}"
    hint = f"start one with: segue serve{_port_flag(args)}"
    with client:
        try:
            client.send("/segue/cancel", [args.request_id])
            client.send("/segue/ping", [probe])
            deadline = time.monotonic() + 3.0
            while time.monotonic() < deadline:
                reply = client.receive(deadline - time.monotonic())
                if reply is None or not reply.args:
                    continue
                if reply.args[0] == args.request_id and reply.address == "/segue/error":
                    code, message = (list(reply.args[1:]) + ["", ""])[:2]
                    print(f"error {code}: {message}", file=sys.stderr)
                    return 1
                if reply.args[0] == probe and reply.address == "/segue/pong":
                    print(f"cancelled {args.request_id} (its client reports `error cancelled`)")
                    return 0
        except ConnectionRefusedError:
            pass
    print(f"error no_engine: no engine answered at {args.host}:{args.port}; {hint}", file=sys.stderr)
    return 3


def cmd_renders(args) -> int:
    from .renders import list_renders, parse_age, parse_size, prune, render_folders, describe

    try:
        max_size = parse_size(args.max_size) if args.max_size else None
        older = parse_age(args.older_than) if args.older_than else None
    except ValueError as e:
        return _usage_error(args, str(e))
    for d in args.dir or []:   # a mistyped folder is said, not listed as "0 file(s)"
        if not Path(d).is_dir():
            return _usage_error(args, f"--dir {d}: {'not a folder' if Path(d).exists() else 'no such folder'}")
    folders = render_folders(args.dir)
    files = list_renders(folders)
    if not (args.max_size or args.older_than):
        print(describe(folders, files))
        return 0
    removed, freed = prune(files, max_size=max_size, older_than=older, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for f in removed:
        print(f"{verb} {f.path}")
    print(f"{verb} {len(removed)} file(s), {freed / 1e6:.1f} MB; kept {len(files) - len(removed)}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo, write_demo_loop

    if args.loop_only:
        print(write_demo_loop())
        return 0
    return run_demo(port=args.port)


# ---------------------------------------------------------------- parser

class _Help(argparse.RawDescriptionHelpFormatter):
    """Real defaults shown after each option; examples (the epilog) kept as written."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "(default" not in text \
                and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _client_common(p: argparse.ArgumentParser, request: bool = True, wait: bool = True) -> None:
    p.add_argument("--host", default="127.0.0.1", help="engine address; localhost counts as loopback")
    p.add_argument("--port", type=port_number, default=DEFAULT_PORT, help="engine port ($SEGUE_PORT sets the default)")
    p.add_argument("--token", help="shared secret, when the engine runs with --token")
    if not wait:
        return
    p.add_argument("--id", type=request_id,
                   help="request id, to cancel it by name (default: random, printed on stderr)")
    p.add_argument("--timeout", type=_number(0, None, "--timeout", above=True), default=600.0,
                   help="seconds to wait for the result before cancelling")
    p.add_argument("--status-file", metavar="PATH", help="mirror events into this key=value file (atomic rewrites)")
    p.add_argument("--quiet", action="store_true", help="no request id line and no progress on stderr")
    if request:
        p.add_argument("--bpm", type=_number(20, 400, "--bpm"),
                       help="project tempo in quarter notes per minute (20-400)")
        p.add_argument("--sig", default=None, help="time signature N/D, e.g. 7/8 (engine default 4/4)")
        p.add_argument("--sr", type=_number(8000, 192000, "--sr", integer=True),
                       help="sample rate of the output in Hz (default: the source's)")
        p.add_argument("--downbeat", type=_number(0, None, "--downbeat"),
                       help="seconds into SRC of any bar line (default 0)")
        p.add_argument("--prompt", help="text prompt (neural backends)")
        p.add_argument("--seed", type=_number(0, 2147483647, "--seed", integer=True),
                       help="random seed; variation k uses seed+k (engine default 0)")
        p.add_argument("--variations", type=_number(1, 8, "--variations", integer=True),
                       help="how many different results, 1-8 (default 1)")
        p.add_argument("--out", metavar="FOLDER",
                       help="output folder; must lie under the engine's allowed folders (default: its renders folder)")
        p.add_argument("--backend", help="a backend the engine has loaded (default: its first; dsp is always there)")


def _examples(*lines: str) -> str:
    return "example:\n" + "\n".join(f"  {line}" for line in lines)


LOOP = "~/.local/share/segue/demo/demo-loop-120bpm.wav"  # written by `segue demo` (Linux path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segue", formatter_class=_Help,
        description="Segue: a resident generative-audio engine for DAWs, and its command-line client.",
        epilog="Start with `segue demo`, then `segue serve` in one terminal and the client commands in another.\n"
               "Protocol and error codes: docs/protocol.md.")
    parser.add_argument("--version", action="version", version=f"segue {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the resident engine", formatter_class=_Help,
                       epilog=_examples("segue serve", "segue serve --backend sao-small --port 9200"))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback only)")
    p.add_argument("--port", type=listen_port, default=DEFAULT_PORT,
                   help="UDP port to listen on; 0 picks a free one (default: $SEGUE_PORT, else 9137)")
    p.add_argument("--token", help="shared secret; required to bind a non-loopback address")
    p.add_argument("--backend", default="dsp",
                   help="backends to keep warm, comma-separated; the first is the default, dsp is always "
                        "loaded (e.g. sao-small,musicgen-small)")
    p.add_argument("--model", action="append",
                   help="model folder or Hugging Face repo id; NAME=PATH for one backend (repeatable)")
    p.add_argument("--text-encoder", action="append", help="text encoder folder; NAME=PATH for one backend")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: best available)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="neural backends' weight precision (default: auto, the device's best)")
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="a neural backend's tuning, e.g. sa3-small.window=official or steps=8 (KEY=VALUE goes to every backend, NAME.KEY=VALUE to one; on/off, yes/no, true/false for switches; a key no backend reads stops the start; docs/sa3-small.md, docs/sao-small.md)")
    p.add_argument("--allow-dir", action="append", help="extra folder outputs may be written under (repeatable)")
    # nonsense limits are refused here: an engine started with --timeout -1 or --queue-size 0 refused every request
    p.add_argument("--queue-size", type=_number(1, 10000, "--queue-size", integer=True), default=16,
                   help="requests waiting beyond the running one before `busy` (default: 16)")
    p.add_argument("--timeout", type=_number(0, None, "--timeout", above=True), default=300.0, help="per-request time limit in seconds")
    p.add_argument("--max-source-seconds", type=_number(0, None, "--max-source-seconds", above=True), default=3600.0,
                   help="longest source file the engine reads (default 3600)")
    p.add_argument("--source-dir", action="append",
                   help="folder sources must lie under (repeatable); with --token, sources outside "
                        "every --source-dir are refused")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="engine log on stderr (default: info)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("inpaint", help="regenerate [START, END) seconds of SRC", formatter_class=_Help,
                       description="Regenerate the part of SRC between START and END (seconds into the file); the "
                                   "result is exactly (END-START) x sr samples long. Prints the result path(s).",
                       epilog=_examples(f"segue inpaint {LOOP} 4.0 6.0 --bpm 120 --sr 48000",
                                        f"segue inpaint {LOOP} 2.0 3.0 --hit remove"))
    p.add_argument("src", metavar="SRC", help="audio file (WAV, AIFF, FLAC, Ogg, MP3); a relative path is taken "
                                              "from the current folder; never modified")
    p.add_argument("start", metavar="START", type=_number(0, None, "START"), help="seconds into SRC where the region starts")
    p.add_argument("end", metavar="END", type=_number(0, None, "END"), help="seconds into SRC where the region ends")
    _client_common(p)
    p.add_argument("--regions", metavar="S1:E1,S2:E2",
                   help="regenerate only these spans (seconds, inside [START, END)); the output still covers "
                        "[START, END)")
    p.add_argument("--hit", choices=["replace", "remove"],
                   help="a short selection holding a drum hit: replace it with a hit of the same kind "
                        "(engine default) or remove it")
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("continue", help="continue SRC from AT seconds for BARS bars (needs --bpm)",
                       formatter_class=_Help,
                       description="Continue the audio of SRC from AT seconds on, for BARS bars at --bpm and --sig: "
                                   "exactly BARS x bar length samples. Only audio before AT is used.",
                       epilog=_examples(f"segue continue {LOOP} 8.0 4 --bpm 120",
                                        f"segue continue {LOOP} 8.0 2 --bpm 120 --sig 7/8 --variations 3"))
    p.add_argument("src", metavar="SRC", help="audio file; a relative path is taken from the current folder")
    p.add_argument("at", metavar="AT", type=_number(0, None, "AT", above=True),
                   help="seconds into SRC where the continuation starts (usually the file's length)")
    p.add_argument("bars", metavar="BARS", type=_number(0, 64, "BARS", above=True),
                   help="how many bars to add (fractions allowed, at most 64)")
    _client_common(p)
    p.set_defaults(func=cmd_continue)

    p = sub.add_parser("generate", help="new audio from a prompt, BARS bars long (neural backends; needs --bpm)",
                       formatter_class=_Help,
                       description="New audio from --prompt, exactly BARS bars at --bpm and --sig. Needs an engine "
                                   "with a backend that generates (sao-small, sa3-small, musicgen-small; not dsp). "
                                   "Prints the result path(s).",
                       epilog=_examples('segue generate 4 --bpm 120 --prompt "dusty breakbeat, 120 BPM"'))
    p.add_argument("bars", metavar="BARS", type=_number(0, 64, "BARS", above=True),
                   help="length in bars at --bpm and --sig (fractions allowed, at most 64)")
    _client_common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("ping", help="check that an engine answers", formatter_class=_Help,
                       epilog=_examples("segue ping", "segue ping --wait 30    # until a starting engine answers"))
    _client_common(p, request=False)
    p.add_argument("--wait", type=_number(0, 3600, "--wait"), default=0.0,
                   help="seconds to keep trying while an engine starts")
    p.set_defaults(func=cmd_ping)

    p = sub.add_parser("status", help="engine state, backend and queue", formatter_class=_Help,
                       epilog=_examples("segue status --detail"))
    _client_common(p, request=False)
    p.add_argument("--detail", action="store_true", help="also print backend device, dtype and memory")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("cancel", help="cancel a queued or running request by its id", formatter_class=_Help,
                       epilog=_examples("segue cancel 3f2a9c1b7d0e    # the id the request printed"))
    p.add_argument("request_id", metavar="ID", type=request_id, help="the request id (printed by the request, or given with --id)")
    _client_common(p, request=False, wait=False)
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("renders", help="list the rendered files, or prune them by size or age", formatter_class=_Help,
                       description="Results are written to the renders folder (see `segue renders`); nothing "
                                   "deletes them by itself. Without a limit this lists them; with --max-size or "
                                   "--older-than it deletes the oldest renders beyond the limit. Make sure no DAW "
                                   "project still plays a render before pruning it.",
                       epilog=_examples("segue renders", "segue renders --max-size 500M",
                                        "segue renders --older-than 7d --dry-run"))
    p.add_argument("--dir", action="append", metavar="FOLDER",
                   help="a folder to look in instead of the renders folder (repeatable; e.g. an --out folder); "
                        "only the engine's results (NAME-KIND-ID-TAG-vN.wav) count, other files are never touched")
    p.add_argument("--max-size", metavar="SIZE", help="keep the newest renders up to SIZE in total (e.g. 500M, 2G)")
    p.add_argument("--older-than", metavar="AGE", help="delete renders older than AGE (e.g. 90m, 12h, 7d)")
    p.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    p.add_argument("--id", default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_renders)

    p = sub.add_parser("demo", help="start an engine on dsp, continue a freshly rendered loop, print the result",
                       formatter_class=_Help, epilog=_examples("segue demo", "segue demo --loop-only"))
    p.add_argument("--port", type=listen_port, default=0, help="engine port (0: a free one)")
    p.add_argument("--loop-only", action="store_true",
                   help="only write the demo's 120 BPM loop and print its path (start nothing)")
    p.set_defaults(func=cmd_demo)

    try:
        from .models_cli import add_models_parser
    except ImportError:
        pass
    else:
        add_models_parser(sub)
    from segue.bridge.jam.cli import add_jam_parser  # `segue jam` (live playing): bridge/jam/

    add_jam_parser(sub)
    return parser


# Modules of the optional extras, and the extra that brings each.
EXTRAS = {"torch": "neural", "transformers": "neural", "safetensors": "neural", "huggingface_hub": "neural",
          "sentencepiece": "neural", "mido": "live", "rtmidi": "live", "sounddevice": "live"}


def missing_extra_message(e: ModuleNotFoundError) -> str | None:
    """The install hint for a missing optional dependency, or None for any other missing module."""
    top = (e.name or "").split(".")[0]
    extra = EXTRAS.get(top)
    if extra is None:
        return None
    torch_note = " (for torch on a CPU-only machine see README.md, \"Neural backends\")" if extra == "neural" else ""
    return (f"this needs the optional `{extra}` dependencies (No module named {top!r}). Install them into the "
            f"environment segue runs from: pip install -e '.[{extra}]' from the repository root{torch_note}")


OSC_COMMANDS = frozenset({"inpaint", "continue", "generate", "ping", "status", "cancel"})


def _not_utf8(args) -> str | None:
    """The first argument of an OSC-sending command that is not valid UTF-8 (a file name with a
    Latin-1 byte reaches Python as a lone surrogate), described for the user; None when all are."""
    for key, value in vars(args).items():
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str):
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    shown = v.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                    return f"{key} {shown!r} holds bytes that are not UTF-8"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env_port = os.environ.get("SEGUE_PORT")
    if env_port is not None and env_port.strip() != "":
        try:
            port_number(env_port)
        except argparse.ArgumentTypeError as e:   # falling back to 9137 could reach another engine
            print(f"segue {args.command}: error: $SEGUE_PORT: {e}; fix or unset it", file=sys.stderr)
            return 2
    if getattr(args, "command", None) in OSC_COMMANDS:
        bad = _not_utf8(args)
        if bad:
            print(f"segue {args.command}: error: {bad}; OSC carries text as UTF-8, so the engine could not "
                  "be told it (rename the file or folder, or use UTF-8 text)", file=sys.stderr)
            return 2
    try:
        return args.func(args)
    except SegueError as e:
        print(f"error {e.code}: {cli_message(e.message)}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as e:
        hint = missing_extra_message(e)
        if hint is None:
            raise
        print(f"error missing_extra: {hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
