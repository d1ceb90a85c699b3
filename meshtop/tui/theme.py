"""Themes: small TOML files turned into Textual themes. meshtop's own come from the
`themes/` folder it ships; a user's, from `themes/` in their config directory, win by name."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from textual.theme import BUILTIN_THEMES, Theme

from meshtop.config import default_config_path

COLOURS = (
    "primary", "secondary", "accent", "success", "warning", "error",
    "foreground", "background", "surface", "panel",
)  # fmt: skip


def shipped_themes_dir() -> Path:
    """The package's copy in a wheel; the repository's folder in a development install."""
    here = Path(__file__).resolve().parents[1]
    packaged = here / "themes"
    return packaged if packaged.is_dir() else here.parent / "themes"


def user_themes_dir() -> Path:
    return default_config_path().parent / "themes"


def theme_from_file(path: Path) -> Theme:
    """Raises ValueError with a message naming the file and what is wrong in it."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"theme {path}: {exc}") from None
    unknown = set(data) - {"name", "dark", *COLOURS}
    if unknown:
        raise ValueError(f"theme {path}: unknown keys {', '.join(sorted(unknown))}")
    if not isinstance(data.get("name"), str) or not isinstance(data.get("primary"), str):
        raise ValueError(f"theme {path}: needs at least `name` and `primary`")
    try:
        theme = Theme(
            name=data["name"],
            dark=bool(data.get("dark", True)),
            **{k: data[k] for k in COLOURS if k in data},
        )
        theme.to_color_system()  # parses every colour: a typo fails here, not on screen
    except Exception as exc:  # Textual's colour parser raises its own kinds
        raise ValueError(f"theme {path}: {exc}") from None
    return theme


@dataclass
class ThemeSet:
    themes: dict[str, Theme] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def load_themes(*dirs: Path) -> ThemeSet:
    """Every `*.toml` theme in `dirs`, later folders winning; broken files are reported,
    not fatal, so one typo does not keep the console from starting."""
    found = ThemeSet()
    for folder in dirs or (shipped_themes_dir(), user_themes_dir()):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            try:
                theme = theme_from_file(path)
            except ValueError as exc:
                found.problems.append(str(exc))
            else:
                found.themes[theme.name] = theme
    return found


def theme_names(themes: ThemeSet) -> list[str]:
    return sorted({*themes.themes, *BUILTIN_THEMES})
