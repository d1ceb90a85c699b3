"""The same screen in fewer bytes (issue 17). Textual writes each run of text in one style
as `ESC[0m` (reset) and the whole of its style again (`ESC[38;2;r;g;b;48;2;r;g;bm`, some
40 bytes), though the run before often had the same background and flags: about half of
a frame's bytes were these, and a terminal reads every one of them (over SSH, or a slow
emulator: 13-17 kB a screen at 160x48). Where a reset is followed at once by the next
style, the pair is written as what changes: the flags turned off and on (`ESC[22m` for
bold), the colours (`ESC[38;2;r;g;bm`, `ESC[39m`), or nothing if none does; the terminal
ends in the same state. Anything this does not read (another attribute, an
underline colour, a style set on top of another) is written as it came."""

from __future__ import annotations

import re
from functools import lru_cache

_SGR = re.compile(r"\x1b\[([0-9;:]*)m")
_RESETS = ("", "0")
_FLAGS = frozenset({"1", "2", "3", "4", "5", "6", "7", "8", "9", "21", "51", "52", "53"})
_FG = frozenset({*map(str, range(30, 38)), *map(str, range(90, 98))})
_BG = frozenset({*map(str, range(40, 48)), *map(str, range(100, 108))})

# a style's colours and flags: (foreground, background, flags); None: not one this reads
Parsed = tuple[str, str, frozenset[str]] | None


@lru_cache(maxsize=4096)  # styles kept parsed (a theme has some dozens; hostile text adds none)
def parse(params: str) -> Parsed:
    """The colours ("" for the terminal's default) and the flags of an SGR's parameters
    applied after a reset, or None where it holds anything else."""
    if ":" in params:
        return None
    tokens = params.split(";")
    fg = bg = ""
    flags: set[str] = set()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("38", "48"):
            kind = tokens[i + 1] if i + 1 < len(tokens) else ""
            width = 4 if kind == "2" else 2 if kind == "5" else 0
            if not width or i + width >= len(tokens):
                return None
            colour = ";".join(tokens[i : i + width + 1])
            if token == "38":
                fg = colour
            else:
                bg = colour
            i += width + 1
            continue
        if token in _FG:
            fg = token
        elif token in _BG:
            bg = token
        elif token == "39":
            fg = ""
        elif token == "49":
            bg = ""
        elif token in _FLAGS:
            flags.add(token)
        else:
            return None
        i += 1
    return fg, bg, frozenset(flags)


# what turns a flag off (22 turns off bold and faint both, 24 either underline)
_OFF = {"1": "22", "2": "22", "3": "23", "4": "24", "21": "24", "5": "25", "6": "25",
        "7": "27", "8": "28", "9": "29", "51": "54", "52": "54", "53": "55"}  # fmt: skip


def between(before: str, after: str) -> str | None:
    """What takes the terminal from the style `before` to `after` (both SGR parameters,
    each applied after a reset) without a reset: the flags turned off and on, and the
    colours that change; None where a style is not one this reads."""
    a, b = parse(before), parse(after)
    if a is None or b is None:
        return None
    off = {_OFF[flag] for flag in a[2] - b[2]}
    # a flag of both that an off turned off too (22: bold and faint) is turned on again
    on = b[2] - a[2] | {flag for flag in a[2] & b[2] if _OFF[flag] in off}
    parts = [*sorted(off), *sorted(on)]
    if a[0] != b[0]:
        parts.append(b[0] or "39")
    if a[1] != b[1]:
        parts.append(b[1] or "49")
    return f"\x1b[{';'.join(parts)}m" if parts else ""


def compact(frame: str) -> str:
    """`frame` with each reset-and-restyle pair written as its change, where one is
    known (module docstring)."""
    found = list(_SGR.finditer(frame))
    if len(found) < 2:
        return frame
    out: list[str] = []
    written = 0  # what of `frame` is in `out`
    active: str | None = None  # the style in effect since the last reset; None: not known
    i = 0
    while i < len(found):
        sgr = found[i]
        params = sgr.group(1)
        if params not in _RESETS:
            active = params if active == "" else None  # on top of a style: not read
            i += 1
            continue
        after = found[i + 1] if i + 1 < len(found) else None
        if after is None or after.start() != sgr.end() or after.group(1) in _RESETS:
            active = ""
            i += 1
            continue
        change = between(active, after.group(1)) if active else None
        if change is not None and len(change) < after.end() - sgr.start():
            out.append(frame[written : sgr.start()])
            out.append(change)
            written = after.end()
        active = after.group(1)
        i += 2
    if not out:
        return frame
    out.append(frame[written:])
    return "".join(out)


# Blanks as erases: a run of blanks written as "erase so many characters" (ECH), and
# "move right as many" (CUF) where more of the line follows. A frame's lines are padded
# with blanks in their background, to the screen's edge, to the scroll bar beside them,
# between a table's columns (a third of a detail's first frame at 160x48). A terminal that
# erases in the current background (terminfo's `bce`: xterm's, the Linux console's) draws
# the same cells from `ESC[nX`, which leaves the cursor where the run began: before a
# cursor move (the next line's or piece's, or the frame's last) nothing more is needed;
# before more of the line's text the cursor is moved on (a line never reaches past the
# edge, so neither does that move); anywhere else the run is kept (a run to the edge
# leaves the cursor waiting to wrap, which a move does not). Only while no flag that
# shows on a blank (underline, reverse, strike, framed, encircled, overline) may be on.
_BEFORE_A_MOVE = 6  # a run no shorter than this is erased before a cursor move
_MOVED_ON = 12  # and one no shorter than this where the line goes on after it
_MOVE = re.compile(r"\x1b\[\d+;\d+H")
_STYLES = re.compile(r"(?:\x1b\[[0-9;:]*m)*")
_BLANKS = re.compile(rf"(?<! )( {{{_BEFORE_A_MOVE},}}+)((?={_STYLES.pattern}\n?{_MOVE.pattern}))?")
_SHOWN_ON_BLANK = frozenset({"4", "21", "7", "9", "51", "52", "53"})
# what each off turns off of those (24: either underline), and the SGRs that change
# nothing a blank shows: the other flags, their offs, and the default colours
_TURNS_OFF = {
    _OFF[flag]: frozenset(f for f in _SHOWN_ON_BLANK if _OFF[f] == _OFF[flag])
    for flag in _SHOWN_ON_BLANK
}
_HARMLESS = _FLAGS - _SHOWN_ON_BLANK | {_OFF[f] for f in _FLAGS - _SHOWN_ON_BLANK}
_HARMLESS |= {"39", "49", "59"} | _FG | _BG
_COLOUR_AT = frozenset({"38", "48", "58"})
_AFTER_RESET = ("\x1b[0m", "\x1b[m", "\x1b[0m\n", "\x1b[m\n")


@lru_cache(maxsize=4096)  # as `parse`: a theme's styles, each after a few others
def _blank_shows(params: str, before: frozenset[str] | None) -> frozenset[str] | None:
    """The flags shown on a blank that are on after an SGR with `params`, from those on
    `before` (None: not known; an SGR this does not read makes them not known)."""
    on = set(before) if before is not None else None
    tokens = params.split(";")
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in _RESETS:
            on = set()
        elif token in _COLOUR_AT:
            kind = tokens[i + 1] if i + 1 < len(tokens) else ""
            i += 4 if kind == "2" else 2 if kind == "5" else 0
            if kind not in ("2", "5"):
                return None
        elif token in _SHOWN_ON_BLANK:
            if on is not None:
                on.add(token)
        elif token in _TURNS_OFF:
            if on is not None:
                on -= _TURNS_OFF[token]
        elif token not in _HARMLESS:
            return None  # underline styles (4:3), and anything else
        i += 1
    return frozenset(on) if on is not None else None


def erase_blanks(frame: str) -> str:
    """`frame` with its runs of blanks written as erases, where that draws the same
    (above). For a terminal that erases in the current background only. A run's flags
    are read from the cursor move that begins its piece of line, which must come after
    a reset (the piece before ended with one, as Rich ends a styled run): otherwise they
    are not known, and the run is kept. Each piece is read once, however many runs."""
    runs = list(_BLANKS.finditer(frame))
    if not runs:
        return frame
    moves = list(_MOVE.finditer(frame))
    out: list[str] = []
    written = 0
    m = -1
    read_to = 0  # what of the run's piece has been read: `shown` holds after it
    shown: frozenset[str] | None = None
    for run in runs:
        start, n, before_a_move = run.start(1), len(run.group(1)), run.group(2) is not None
        if not before_a_move:
            after = _STYLES.match(frame, run.end(1)).end()  # type: ignore[union-attr]
            if n < _MOVED_ON or after == len(frame) or frame[after] < " ":
                continue  # more of the line must follow: at its end, the cursor's place
        piece = m
        while m + 1 < len(moves) and moves[m + 1].start() < start:
            m += 1
        if m != piece:  # a new piece
            read_to = moves[m].end()
            shown = frozenset() if frame.endswith(_AFTER_RESET, 0, moves[m].start()) else None
        if shown is None:
            continue
        pieces = _SGR.split(frame[read_to:start])  # text, parameters, text, ...
        if any(ch < " " for ch in "".join(pieces[0::2])):
            shown = None  # another sequence, or a control: what it does is not read
            continue
        for params in pieces[1::2]:
            shown = _blank_shows(params, shown)
            if shown is None:
                break
        read_to = run.end(1)  # the blanks, written or erased, leave the flags as they are
        if shown is None or shown:
            continue
        out.append(frame[written:start])
        out.append(f"\x1b[{n}X" if before_a_move else f"\x1b[{n}X\x1b[{n}C")
        written = run.end(1)
    if not out:
        return frame
    out.append(frame[written:])
    return "".join(out)
