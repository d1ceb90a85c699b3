"""A file holding a secret that others can read is said once, as ssh says it of a key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from meshtop.config import load


def _file(path: Path, text: str, mode: int) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_token_file_readable_by_others_is_warned_of(tmp_path: Path) -> None:
    token = _file(tmp_path / "token", "s3cret\n", 0o644)
    config = _file(
        tmp_path / "c.toml", f'[prometheus]\nurl = "http://p"\ntoken_file = "{token}"\n', 0o644
    )
    warnings = load(config_file=config, environ={}).warnings
    assert len(warnings) == 1 and str(token) in warnings[0] and "0644" in warnings[0]
    assert "s3cret" not in warnings[0]
    token.chmod(0o600)
    assert load(config_file=config, environ={}).warnings == ()  # the file has no secret itself


def test_a_config_file_is_warned_of_only_when_it_holds_a_secret(tmp_path: Path) -> None:
    plain = _file(tmp_path / "plain.toml", '[prometheus]\nurl = "http://p"\n', 0o644)
    assert load(config_file=plain, environ={}).warnings == ()
    secret = _file(
        tmp_path / "secret.toml",
        '[prometheus]\nurl = "http://p"\nheaders = { Authorization = "Bearer s3cret" }\n',
        0o640,
    )
    (warning,) = load(config_file=secret, environ={}).warnings
    assert str(secret) in warning and "chmod 600" in warning
    secret.chmod(0o600)
    assert load(config_file=secret, environ={}).warnings == ()


def test_the_warning_is_one_line_on_stderr_and_the_command_goes_on(tmp_path: Path) -> None:
    config = _file(tmp_path / "c.toml", '[tracing]\nurl = "http://t"\ntenant = "team-a"\n', 0o644)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "meshtop"), "--config", str(config), "export", "--demo",
         "--format", "json", "-o", str(tmp_path / "out.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    said = [line for line in done.stderr.splitlines() if "warning" in line]
    assert said == [
        f"meshtop: warning: config file {config} holds a secret and is readable by others "
        "(mode 0644); chmod 600 it"
    ]
