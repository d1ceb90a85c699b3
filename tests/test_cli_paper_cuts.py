"""Small CLI failures that looked like bugs: each now works, or says what is wrong."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from .test_cli import meshtop


def test_a_report_to_dev_stdout_in_a_pipe_is_written() -> None:
    done = meshtop("export", "--demo", "--format", "json", "-o", "/dev/stdout")  # a pipe here
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["schema"] == 1


def test_a_kubeconfig_that_is_not_there_is_said_so() -> None:
    done = meshtop("--kubeconfig", "/nonexistent/config", "shift", "bookinfo/reviews",
                   "--set", "v1=100", "--yes")  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "meshtop: kubeconfig /nonexistent/config: no such file"


@pytest.fixture
def plain_http() -> Iterator[int]:
    """A server that speaks plain HTTP, where https:// is asked for."""

    class Plain(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Plain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


def test_a_tls_failure_says_what_openssl_said_and_a_hint_that_fits(plain_http: int) -> None:
    url = f"https://127.0.0.1:{plain_http}"
    checked = meshtop("export", "--prometheus", url, "--format", "json", "-o", "-")
    assert checked.returncode == 3
    assert "failed (wrong version number)" in checked.stderr and "--insecure" in checked.stderr
    skipped = meshtop("export", "--prometheus", url, "--insecure", "--format", "json", "-o", "-")
    assert skipped.returncode == 3
    line = skipped.stderr.strip()
    assert line == f"meshtop: TLS to Prometheus at {url} failed (wrong version number): " \
                   "is it serving HTTPS on that port?"  # fmt: skip
    assert "SSLError" not in line


@pytest.mark.parametrize(("escdelay", "seconds"), [(None, 0.025), ("200", 0.2)])
def test_esc_is_waited_on_for_25_ms_unless_the_user_says(
    escdelay: str | None, seconds: float
) -> None:
    """A lone ESC is the esc key only once no sequence follows it within the escape
    delay: Textual's own 100 ms made every esc (close, clear, cancel) feel late. The
    console sets htop's 25 ms before Textual reads it, and keeps a user's ESCDELAY."""
    read = _read_as_the_console("ESCDELAY", escdelay, "constants.ESCAPE_DELAY")
    assert float(read) == seconds


def _read_as_the_console(name: str, value: str | None, expression: str) -> str:
    """`expression` as Textual reads it in a process that set its terminal environment as
    the console does, with the variable `name` set to `value` (None: not set)."""
    env = {k: v for k, v in os.environ.items() if k != name}
    if value is not None:
        env[name] = value
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "from meshtop.cli.console import terminal_environment\n"
            "terminal_environment()\n"
            "from meshtop.tui.app import MeshtopApp\n"
            "from textual import constants\n"
            "from textual.app import App\n"
            f"print({expression})",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return read.stdout.strip()


@pytest.mark.parametrize(("animations", "level"), [(None, "none"), ("full", "full")])
def test_nothing_is_animated_unless_the_user_says(animations: str | None, level: str) -> None:
    """The tab bar's underline slid for 0.3 s after each tab switch, a frame every few
    milliseconds written to the terminal while the new tab's own frame was made (issue
    17): the console sets no animation before Textual reads it, and keeps a user's
    TEXTUAL_ANIMATIONS."""
    assert _read_as_the_console("TEXTUAL_ANIMATIONS", animations, "App().animation_level") == level
