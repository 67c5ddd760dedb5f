"""`segue`: the engine (`segue serve`) and its command-line client.

Client subcommands print result paths on stdout, draw a progress bar on a
terminal, and exit 0 on success, 1 on an error reply, 2 on usage errors and
3 when no engine answers. `--status-file` mirrors every event into a small
key=value file for callers that cannot read a pipe (the REAPER scripts).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from . import __version__
from .errors import SegueError

DEFAULT_PORT = 9137


# ---------------------------------------------------------------- serve

def cmd_serve(args) -> int:
    # numpy's BLAS threads cost more than they give on the dsp backend's small products
    # (measured ~10 ms per call on a busy 2-core machine); must be set before numpy loads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from bridge.osc_server import OscServer

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
        print(f"segue serve: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 1
    engine.start()

    def shutdown(*_):
        server.stop()   # the loop ends; the socket stays open for the final replies below

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    host, port = server.address
    loaded = ", ".join(backends) + (f"; failed to load: {', '.join(failed)}" if failed else "")
    print(f"segue {__version__} engine ready on {host}:{port} (backend {default}; loaded {loaded}; "
          f"outputs in {roots.default})", flush=True)
    try:
        server.serve_forever()
    finally:
        engine.stop()     # every queued and running request hears "engine shutting down" ...
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

    log = logging.getLogger("segue")
    models = _per_backend(args.model if isinstance(args.model, list) else [args.model] if args.model else [], names)
    encoders = _per_backend(args.text_encoder if isinstance(args.text_encoder, list)
                            else [args.text_encoder] if args.text_encoder else [], names)
    options = _backend_options(args.option or [], names)
    asked = [n for n in names if n != "dsp"] or ["dsp"]
    backends, failed = {}, {}
    for name in names:
        config = BackendConfig(model=models.get(name), text_encoder=encoders.get(name), device=args.device,
                               precision=args.precision, extra=options.get(name, {}))
        try:
            log.info("loading backend %s", name)
            backend = create(name, config)
            backend.load()
        except Exception as e:
            code, message = (e.code, e.message) if isinstance(e, SegueError) else ("internal", f"{type(e).__name__}: {e}")
            if len(asked) == 1 and name in asked or name == "dsp":
                raise SegueError(code, message) from e
            log.error("backend %s failed to load: %s: %s", name, code, message)
            failed[name] = f"{code}: {message}"
            continue
        backends[name] = backend
    return backends, failed


def _backend_options(pairs: list[str], names: list[str] | None = None) -> dict:
    """--option KEY=VALUE (every backend) or NAME.KEY=VALUE (one backend) -> {name: BackendConfig.extra},
    numbers and booleans parsed. Without `names`, the flat dict of KEY=VALUE pairs."""
    flat: dict = {}
    per: dict[str, dict] = {n: {} for n in names or []}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SegueError("bad_option", f"--option {pair!r} must look like KEY=VALUE")
        low = value.lower()
        if low in ("true", "false"):
            parsed = low == "true"
        else:
            try:
                parsed = int(value)
            except ValueError:
                try:
                    parsed = float(value)
                except ValueError:
                    parsed = value
        target, dot, short = key.partition(".")
        if dot and target in per:
            per[target][short] = parsed
        else:
            flat[key] = parsed
            for extra in per.values():
                extra.setdefault(key, parsed)
    return per if names is not None else flat


# ---------------------------------------------------------------- client

class StatusFile:
    """key=value mirror of a request's events, rewritten atomically."""

    def __init__(self, path: str | None, rid: str):
        self.path = path
        self.rid = rid

    def write(self, **fields) -> None:
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


class ProgressBar:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.drawn = False

    def draw(self, fraction: float, stage: str) -> None:
        if not self.enabled:
            return
        width = 30
        full = int(round(fraction * width))
        sys.stderr.write(f"\r[{'#' * full}{'.' * (width - full)}] {fraction * 100:5.1f}% {stage[:40]:<40}")
        sys.stderr.flush()
        self.drawn = True

    def end(self) -> None:
        if self.drawn:
            sys.stderr.write("\n")
            sys.stderr.flush()


def _options(args) -> dict:
    opts = {}
    for key in ("bpm", "sig", "sr", "downbeat", "prompt", "seed", "variations", "out", "backend"):
        value = getattr(args, key, None)
        if value is not None:
            opts[key] = value
    if opts.get("out"):
        opts["out"] = os.path.abspath(opts["out"])
    return opts


def _run_request(args, address: str, positional: list, options: dict) -> int:
    from bridge.client import EngineClient, NoEngine, new_id, request_args

    rid = args.id or new_id()
    status = StatusFile(args.status_file, rid)
    bar = ProgressBar(sys.stderr.isatty() and not args.quiet)
    try:
        status.write(state="sent")
        client = EngineClient(args.host, args.port, args.token)
    except (ValueError, OSError) as e:
        status.write(state="error", code="bad_request", message=str(e))
        print(f"error bad_request: {e}", file=sys.stderr)
        return 2

    def on_event(reply):
        a = reply.args
        if reply.kind == "accepted":
            status.write(state="accepted", fraction=0.0, stage=f"queued at position {a[1]}")
            bar.draw(0.0, f"queued ({a[1]} ahead)" if a[1] else "starting")
        elif reply.kind == "progress":
            status.write(state="progress", fraction=f"{a[1]:.4f}", stage=a[2])
            bar.draw(a[1], a[2])

    try:
        with client:
            outcome = client.call(address, request_args(rid, positional, options), timeout=args.timeout,
                                  on_event=on_event)
    except NoEngine as e:
        bar.end()
        status.write(state="error", code="no_engine", message=str(e))
        print(f"error no_engine: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        bar.end()
        with EngineClient(args.host, args.port, args.token) as c:
            c.send("/segue/cancel", [rid])
        status.write(state="error", code="cancelled", message="interrupted")
        return 130
    bar.end()
    final = outcome.final
    if final.address == "/segue/error":
        _, code, message = (final.args + ["", "", ""])[:3]
        status.write(state="error", code=code, message=message)
        print(f"error {code}: {message}", file=sys.stderr)
        return 1
    if final.address == "/segue/done":
        paths = [final.args[1]] + list(final.args[4:])
        status.write(state="done", fraction=1, seconds=repr(final.args[2]), sr=final.args[3], path=paths)
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
        if len(a) > 5:
            print(a[5])
        return 0
    print(f"error protocol: unexpected reply {final.address}", file=sys.stderr)
    return 1


def cmd_inpaint(args) -> int:
    return _run_request(args, "/segue/inpaint", [os.path.abspath(args.src), float(args.start), float(args.end)],
                        _options(args))


def cmd_continue(args) -> int:
    return _run_request(args, "/segue/continue", [os.path.abspath(args.src), float(args.at), float(args.bars)],
                        _options(args))


def cmd_generate(args) -> int:
    return _run_request(args, "/segue/generate", [float(args.bars)], _options(args))


def cmd_ping(args) -> int:
    return _run_request(args, "/segue/ping", [], {})


def cmd_status(args) -> int:
    return _run_request(args, "/segue/status", [], {"detail": 1} if args.detail else {})


def cmd_cancel(args) -> int:
    from bridge.client import EngineClient

    with EngineClient(args.host, args.port, args.token) as c:
        c.send("/segue/cancel", [args.request_id])
        reply = c.receive(1.0)
    if reply is not None and reply.address == "/segue/error" and reply.args[1] == "not_found":
        print(f"error not_found: {reply.args[2]}", file=sys.stderr)
        return 1
    print(f"cancel sent for {args.request_id}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(port=args.port)


# ---------------------------------------------------------------- parser

def _client_common(p: argparse.ArgumentParser, request: bool = True) -> None:
    p.add_argument("--host", default="127.0.0.1", help="engine address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"engine port (default {DEFAULT_PORT})")
    p.add_argument("--token", help="shared secret, when the engine runs with --token")
    p.add_argument("--id", help="request id (default: random)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the result")
    p.add_argument("--status-file", help="mirror events into this key=value file (atomic rewrites)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    if request:
        p.add_argument("--bpm", type=float, help="project tempo, quarter notes per minute")
        p.add_argument("--sig", help="time signature, e.g. 4/4 or 7/8")
        p.add_argument("--sr", type=int, help="project sample rate of the output (default: the source's)")
        p.add_argument("--downbeat", type=float, help="seconds in the source of a bar line (default 0)")
        p.add_argument("--prompt")
        p.add_argument("--seed", type=int)
        p.add_argument("--variations", type=int)
        p.add_argument("--out", help="output folder (under the engine's allowed roots)")
        p.add_argument("--backend")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segue", description="Segue: generative audio engine for DAWs")
    parser.add_argument("--version", action="version", version=f"segue {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the resident engine")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--token", help="shared secret; required to bind a non-loopback address")
    p.add_argument("--backend", default="dsp",
                   help="backends to keep warm, comma-separated; the first is the default, dsp is always "
                        "loaded (e.g. sao-small,musicgen-small)")
    p.add_argument("--model", action="append",
                   help="model folder or Hugging Face repo id; NAME=PATH for one backend (repeatable)")
    p.add_argument("--text-encoder", action="append", help="text encoder folder; NAME=PATH for one backend")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: best available)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="backend tuning, e.g. steps=8, or NAME.KEY=VALUE for one backend (see docs/sao-small.md)")
    p.add_argument("--allow-dir", action="append", help="extra folder outputs may be written under (repeatable)")
    p.add_argument("--queue-size", type=int, default=16)
    p.add_argument("--timeout", type=float, default=300.0, help="per-request time limit in seconds")
    p.add_argument("--max-source-seconds", type=float, default=3600.0,
                   help="longest source file the engine reads (default 3600)")
    p.add_argument("--source-dir", action="append",
                   help="folder sources must lie under (repeatable); with --token, sources outside "
                        "every --source-dir are refused")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("inpaint", help="regenerate [START, END) seconds of SRC")
    p.add_argument("src")
    p.add_argument("start", type=float)
    p.add_argument("end", type=float)
    _client_common(p)
    p.set_defaults(func=cmd_inpaint)

    p = sub.add_parser("continue", help="continue SRC from AT seconds for BARS bars")
    p.add_argument("src")
    p.add_argument("at", type=float)
    p.add_argument("bars", type=float)
    _client_common(p)
    p.set_defaults(func=cmd_continue)

    p = sub.add_parser("generate", help="new audio from a prompt, BARS bars long")
    p.add_argument("bars", type=float)
    _client_common(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("ping", help="check that an engine answers")
    _client_common(p, request=False)
    p.set_defaults(func=cmd_ping)

    p = sub.add_parser("status", help="engine state, backend and queue")
    _client_common(p, request=False)
    p.add_argument("--detail", action="store_true", help="also print backend device, dtype and memory")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("cancel", help="cancel a queued or running request")
    p.add_argument("request_id")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT)
    p.add_argument("--token")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("demo", help="start an engine on dsp, continue a freshly rendered loop, print the result")
    p.add_argument("--port", type=int, default=0, help="engine port (default: a free one)")
    p.set_defaults(func=cmd_demo)

    try:
        from .models_cli import add_models_parser
    except ImportError:
        pass
    else:
        add_models_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SegueError as e:
        print(f"error {e.code}: {e.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
