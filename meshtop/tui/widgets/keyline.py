"""The key line at the foot of every screen: the keys that screen answers, as `key what`
pairs, as many whole pairs as the width holds. Textual's Footer cuts the last one
mid-word at 80 columns (`g gro`); a pair that does not fit here is left out whole, and
`?` lists them all."""

from __future__ import annotations

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Input, Static


def key_pairs(screen: Screen[object]) -> list[tuple[str, str]]:
    """(key as shown, what it does) for each shown, enabled binding of `screen`, once per
    action, in the order they were declared."""
    if isinstance(screen.focused, Input):  # typing: only what ends the typing
        return [("enter", "apply"), ("esc", "cancel")]
    seen: set[str] = set()
    pairs = []
    for _node, binding, enabled, _tooltip in screen.active_bindings.values():
        if not binding.show or not enabled or binding.action in seen:
            continue
        seen.add(binding.action)
        pairs.append((screen.app.get_key_display(binding), binding.description))
    return pairs


def fit_pairs(pairs: list[tuple[str, str]], width: int) -> Text:
    """Whole pairs, two spaces apart, while they fit in `width` cells; `?` help is kept
    first among what is left out, so the way to the rest is always on screen."""
    order = sorted(range(len(pairs)), key=lambda i: pairs[i][0] not in ("?", "esc"))
    chosen: set[int] = set()
    used = 0
    for i in order:
        key, what = pairs[i]
        need = len(key) + 1 + len(what) + (2 if chosen else 0)
        if used + need <= width:
            chosen.add(i)
            used += need
    text = Text(no_wrap=True, overflow="crop")
    for i in sorted(chosen):
        if len(text):
            text.append("  ")
        key, what = pairs[i]
        text.append(key, "bold")
        text.append(f" {what}")
    return text


class KeyLine(Static):
    DEFAULT_CSS = """
    KeyLine {
        dock: bottom;
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._changed)
        self._draw()

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _changed(self, _screen: Screen[object]) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        width = self.size.width - 2 if self.size.width else self.app.size.width - 2
        self.update(fit_pairs(key_pairs(self.screen), max(width, 0)))
