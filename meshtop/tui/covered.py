"""Containers drawn only where their children leave them showing (issue 17). Textual draws
every widget on screen whole on a full repaint, a container under its children too, and
then keeps the topmost cells: the main screen's five nested full-screen containers (the
screen, the body, the tabs, their switcher, the pane) cost 15-20 ms of a `2`'s 60-110 ms
frame at 2,000 services on a slow core, for cells nobody sees. All but the switcher
(TabbedContent makes it) are `Covered` (`screens/main.py`). A `Covered` container whose
region is all under its children (each line's cells, as on screen) gives blank lines
instead, never shown; where a cell of it shows (padding, a hidden child, a child not laid
out yet), it is drawn as before."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.errors import NoWidget
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

if TYPE_CHECKING:
    _Base = Widget
else:
    _Base = object


def covered(widget: Widget, crop: Region) -> bool:
    """Every cell of `crop` (in the widget's own coordinates) is under a child of it that
    is drawn there (visible, on screen, within its clip: a child reaching into the
    container's padding or border by an offset is not drawn over it)."""
    region = widget.region
    if not region or not crop:
        return False
    want = crop.translate(region.offset).intersection(region)
    if want != crop.translate(region.offset):
        return False  # part of the crop is outside what the widget has on screen
    screen = widget.screen
    spans: list[tuple[int, int, int, int]] = []  # x0, x1, y0, y1 of each child, on screen
    for child in widget.children:
        if not child.visible:
            continue
        try:
            drawn = screen.find_widget(child)  # not displayed, not laid out: not there
        except NoWidget:
            continue
        area = drawn.region.intersection(drawn.clip).intersection(want)
        if area:
            spans.append((area.x, area.right, area.y, area.bottom))
    if not spans:
        return False
    for y in range(want.y, want.bottom):
        x = want.x
        for x0, x1, _, _ in sorted(s for s in spans if s[2] <= y < s[3]):
            if x0 > x:
                return False  # a gap in this line
            x = max(x, x1)
            if x >= want.right:
                break
        if x < want.right:
            return False
    return True


class Covered(_Base):
    """A container that gives blank lines, never shown, for a crop all under its
    children; drawn as Textual draws it anywhere else."""

    def render_lines(self, crop: Region) -> list[Strip]:
        if covered(self, crop):
            return [Strip.blank(crop.width)] * crop.height
        return super().render_lines(crop)
