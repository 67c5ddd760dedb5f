"""What the player presses: MIDI notes and CCs mapped to jam actions in a small TOML file, a learn mode,
terminal keys and OSC addresses for the same actions.

Actions:
- `continue`: continue the last `context` bars for `bars` bars (defaults: the jam's --context / --bars).
- `variation`: a new take of the last continuation (same source bars, next seed).
- `stop`: fade out what plays, drop what is queued.
- `loop`: toggle looping the playing clip until the next trigger.
- `bars`: set the length of the next continuations (a CC's 0-127 maps to 1-16 bars; a note sets `bars`).
- `ahead`: toggle generate-ahead (keep the next continuation ready so a trigger launches on the next bar).

The file (`--triggers PATH`, written by learn mode):

    [[trigger]]
    note = 36            # or: cc = 20
    channel = 1          # optional, 1-16; any channel when absent
    action = "continue"
    context = 4          # optional: bars of input to continue
    bars = 4             # optional: bars to generate
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

ACTIONS = ("continue", "variation", "stop", "loop", "bars", "ahead")

KEYS = {" ": "continue", "c": "continue", "v": "variation", "s": "stop", "l": "loop", "a": "ahead", "q": "quit"}
KEY_HELP = "keys: space/c continue  v variation  s stop  l loop  a ahead  1-9 bars  m<key> learn  q quit"


@dataclass(frozen=True)
class Action:
    name: str
    context: int | None = None
    bars: float | None = None


@dataclass(frozen=True)
class Binding:
    kind: str  # "note" or "cc"
    number: int  # 0-127
    action: str
    channel: int | None = None  # 1-16, None = any
    context: int | None = None
    bars: float | None = None

    def matches(self, msg) -> bool:
        if self.channel is not None and getattr(msg, "channel", -1) != self.channel - 1:
            return False
        if self.kind == "note":
            return msg.type == "note_on" and msg.note == self.number and msg.velocity > 0
        return msg.type == "control_change" and msg.control == self.number

    def action_for(self, msg) -> Action | None:
        if self.kind == "cc" and self.action == "bars":
            return Action("bars", bars=float(max(1, round(msg.value / 127 * 16))))
        if self.kind == "cc" and msg.value == 0:  # a CC button's release
            return None
        return Action(self.action, self.context, self.bars)


DEFAULT_BINDINGS = [Binding("note", 36, "continue"), Binding("note", 37, "variation"), Binding("note", 38, "stop"),
                    Binding("note", 39, "loop"), Binding("note", 40, "ahead"), Binding("cc", 20, "bars")]


class TriggerMap:
    """Bindings from MIDI messages to actions. `learn(action)` binds the next note or CC pressed."""

    def __init__(self, bindings: list[Binding] | None = None, path: Path | None = None):
        self.bindings = list(DEFAULT_BINDINGS if bindings is None else bindings)
        self.path = path
        self.learning: Action | None = None

    @classmethod
    def load(cls, path: str | Path) -> "TriggerMap":
        """Read a trigger file; a missing file gives the defaults (learn mode then creates it).
        Raises ValueError naming the file and the bad entry."""
        path = Path(path)
        if not path.exists():
            return cls(None, path)
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"trigger file {path}: not valid TOML ({e})") from None
        out = []
        for k, e in enumerate(data.get("trigger", []), 1):
            where = f"trigger file {path}, entry {k}"
            kinds = [x for x in ("note", "cc") if x in e]
            if len(kinds) != 1:
                raise ValueError(f"{where}: give exactly one of note = N or cc = N")
            unknown = set(e) - {"note", "cc", "channel", "action", "context", "bars"}
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
            number, action, channel = e[kinds[0]], e.get("action"), e.get("channel")
            if not isinstance(number, int) or not 0 <= number <= 127:
                raise ValueError(f"{where}: {kinds[0]} must be an integer 0-127")
            if action not in ACTIONS:
                raise ValueError(f"{where}: action {action!r} is not one of {', '.join(ACTIONS)}")
            if channel is not None and (not isinstance(channel, int) or not 1 <= channel <= 16):
                raise ValueError(f"{where}: channel must be an integer 1-16")
            context, bars = e.get("context"), e.get("bars")
            if context is not None and (not isinstance(context, int) or not 1 <= context <= 64):
                raise ValueError(f"{where}: context must be an integer 1-64 (bars)")
            if bars is not None and (not isinstance(bars, (int, float)) or not 0 < bars <= 64):
                raise ValueError(f"{where}: bars must be a number in (0, 64]")
            out.append(Binding(kinds[0], number, action, channel, context, None if bars is None else float(bars)))
        return cls(out, path)

    def save(self) -> None:
        """Write the bindings to `self.path` atomically (temporary file + rename)."""
        if self.path is None:
            return
        lines = ["# segue jam triggers (see docs/live.md)"]
        for b in self.bindings:
            lines += ["", "[[trigger]]", f"{b.kind} = {b.number}"]
            if b.channel is not None:
                lines.append(f"channel = {b.channel}")
            lines.append(f'action = "{b.action}"')
            if b.context is not None:
                lines.append(f"context = {b.context}")
            if b.bars is not None:
                lines.append(f"bars = {b.bars:g}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".triggers-")
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(tmp, self.path)

    def learn(self, action: Action) -> None:
        if action.name not in ACTIONS:
            raise ValueError(f"cannot learn {action.name!r}: not one of {', '.join(ACTIONS)}")
        self.learning = action

    def handle(self, msg) -> tuple[str, object] | None:
        """A MIDI message in; ('learned', Binding), ('action', Action) or None out."""
        if self.learning is not None and (msg.type == "note_on" and msg.velocity > 0 or
                                          msg.type == "control_change"):
            act = self.learning
            kind, number = ("note", msg.note) if msg.type == "note_on" else ("cc", msg.control)
            b = Binding(kind, number, act.name, msg.channel + 1, act.context, act.bars)
            # One control, one action: the new binding replaces any for the same control.
            self.bindings = [x for x in self.bindings if (x.kind, x.number) != (kind, number)] + [b]
            self.learning = None
            try:
                self.save()
            except OSError as e:
                return "learned", b, f"not saved to {self.path}: {e.strerror}"
            return "learned", b
        for b in self.bindings:
            if b.matches(msg):
                act = b.action_for(msg)
                return ("action", act) if act else None
        return None


def key_action(key: str) -> Action | None:
    """A terminal key -> Action ('quit' included); digits set the bar count."""
    if key.isdigit() and key != "0":
        return Action("bars", bars=float(key))
    name = KEYS.get(key.lower() if key != " " else key)
    return Action(name) if name else None


def osc_action(address: str, args: list) -> Action:
    """'/jam/<action>' with optional numbers -> Action. Raises ValueError naming the problem.
    /jam/continue [context [bars]], /jam/variation, /jam/stop, /jam/loop, /jam/ahead, /jam/bars N, /jam/learn NAME
    (the learn target is returned as Action('learn:NAME'))."""
    if not address.startswith("/jam/") or address.count("/") != 2:   # /foo/continue, /jam/status/stop
        raise ValueError(f"unknown jam address {address} (addresses are /jam/ACTION: "
                         f"{', '.join(ACTIONS)}, learn, status)")
    name = address.rsplit("/", 1)[-1]
    nums = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    if name == "learn":
        if not args or not isinstance(args[0], str) or args[0] not in ACTIONS:
            raise ValueError(f"/jam/learn needs an action name: one of {', '.join(ACTIONS)}")
        return Action("learn:" + args[0])
    if name not in ACTIONS:
        raise ValueError(f"unknown jam address {address} (actions: {', '.join(ACTIONS)}, learn, status)")
    if len(nums) != len(args):
        raise ValueError(f"{address}: arguments must be numbers")
    if name == "continue":
        context = int(nums[0]) if nums else None
        bars = float(nums[1]) if len(nums) > 1 else None
        if context is not None and not 1 <= context <= 64 or bars is not None and not 0 < bars <= 64:
            raise ValueError(f"{address}: context must be 1-64 bars and bars in (0, 64]")
        return Action("continue", context, bars)
    if name == "bars":
        if len(nums) != 1 or not 0 < nums[0] <= 64:
            raise ValueError("/jam/bars needs one number in (0, 64]")
        return Action("bars", bars=float(nums[0]))
    return Action(name)
