from __future__ import annotations

import time
from pathlib import Path

import pytest

from meshtop.connect import Sources
from meshtop.sim.sources import Simulation
from meshtop.tui.app import MeshtopApp
from meshtop.tui.theme import load_themes, shipped_themes_dir, theme_from_file, user_themes_dir

from ..conftest import only
from ..test_cli import meshtop
from .test_console import _first_snapshot


def test_every_shipped_theme_file_loads() -> None:
    files = sorted(shipped_themes_dir().glob("*.toml"))
    assert {f.stem for f in files} >= {"meshtop", "meshtop-light"}
    for path in files:
        assert theme_from_file(path).name == path.stem


def test_a_users_theme_wins_by_name_and_a_broken_one_is_reported(tmp_path: Path) -> None:
    (tmp_path / "meshtop.toml").write_text('name = "meshtop"\nprimary = "#112233"\n')
    (tmp_path / "broken.toml").write_text('name = "broken"\nprimary = "not-a-colour"\n')
    themes = load_themes(shipped_themes_dir(), tmp_path)
    assert themes.themes["meshtop"].primary == "#112233"
    assert "meshtop-light" in themes.themes
    assert len(themes.problems) == 1 and "broken.toml" in themes.problems[0]


async def test_console_runs_with_a_broken_user_theme_and_says_so(sim: Simulation) -> None:
    folder = user_themes_dir()
    folder.mkdir(parents=True)
    (folder / "oops.toml").write_text('name = "oops"\ncolour = "red"\n')
    app = MeshtopApp(Sources(only(sim.clusters), False, time.time))
    async with app.run_test() as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        assert app.theme == "meshtop"
        assert "oops.toml: unknown keys colour" in str(app.query_one("#notice").render())


def test_unknown_theme_is_a_usage_error() -> None:
    result = meshtop("demo", env={"MESHTOP_THEME": "neon"})
    assert result.returncode == 2
    assert result.stderr.startswith("meshtop: unknown theme 'neon'; choose one of ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize("name", ["meshtop-light", "nord"])
async def test_configured_theme_is_used(sim: Simulation, name: str) -> None:
    from meshtop.config import Settings

    app = MeshtopApp(Sources(only(sim.clusters), False, time.time), settings=Settings(theme=name))
    async with app.run_test() as pilot:
        await _first_snapshot(app)
        await pilot.pause()
        assert app.theme == name
