from __future__ import annotations

from pathlib import Path

import pytest

from meshtop.config import default_config_path, load
from meshtop.errors import UsageError


def test_defaults_without_any_file(tmp_path: Path) -> None:
    settings = load(environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert (settings.refresh_s, settings.window_s, settings.timeout_s) == (2.0, 60.0, 10.0)
    assert settings.config_path is None


def test_file_then_environment_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = default_config_path()
    assert path == tmp_path / "meshtop" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('refresh = "5s"\nwindow = "10m"\ntimeout = "3s"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path), "MESHTOP_WINDOW": "15m"}
    settings = load({"refresh": "1s", "window": None}, environ=env)
    assert settings.config_path == path
    assert settings.timeout_s == 3.0  # file
    assert settings.window_s == 900.0  # environment over file
    assert settings.refresh_s == 1.0  # flag over file


def test_explicit_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"config file .*nope.toml cannot be read"):
        load(config_file=tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("refresh = ", "is not valid TOML"),
        (
            'colour = "red"',
            r"unknown setting .colour.; known settings are \[\[clusters\]\], \[health\], "
            r"\[kubernetes\], "
            r"\[prometheus\]",
        ),
        (
            "[prometheus]\nurl = 'http://p:9090'\nretries = 3",
            "unknown prometheus setting 'retries'",
        ),
        ("prometheus = 'http://p'", r"prometheus must be a table \(\[prometheus\]\)"),
        ('window = "soon"', "window 'soon' is not a positive duration"),
    ],
)
def test_bad_config_files_say_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load(config_file=path, environ={})


def test_bad_environment_value_names_the_environment(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="environment: refresh '0s' is not a positive duration"):
        load(environ={"XDG_CONFIG_HOME": str(tmp_path), "MESHTOP_REFRESH": "0s"})


def test_prometheus_from_file_environment_and_flags(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("from-file\n")
    config = tmp_path / "config.toml"
    config.write_text(
        '[prometheus]\nurl = "https://thanos.example/prom"\n'
        f'token_file = "{token}"\nnamespaces = ["bookinfo"]\n'
        'headers = { "X-Scope-OrgID" = "team-a" }\n'
    )
    settings = load(config_file=config, environ={})
    p = settings.clusters[0].prometheus
    assert p is not None
    assert (p.url, p.token, p.namespaces, dict(p.headers)) == (
        "https://thanos.example/prom", "from-file", ("bookinfo",), {"X-Scope-OrgID": "team-a"},
    )  # fmt: skip
    assert "from-file" not in repr(p)  # a secret is never shown
    env = (
        load(config_file=config, environ={"MESHTOP_PROMETHEUS_TOKEN": "from-env"})
        .clusters[0]
        .prometheus
    )
    assert env is not None and env.token == "from-env"
    flags = (
        load(
            {"prometheus.url": "http://127.0.0.1:9090", "prometheus.dialect": "linkerd"},
            config_file=config,
            environ={},
        )
        .clusters[0]
        .prometheus
    )
    assert flags is not None and (flags.url, flags.dialect) == ("http://127.0.0.1:9090", "linkerd")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"prometheus.dialect": "istio"}, "no URL"),
        ({"prometheus.url": "prom:9090"}, "must start with http:// or https://"),
        (
            {"prometheus.url": "http://p", "prometheus.user": "bob"},
            "needs both a user and a password",
        ),
        (
            {"prometheus.url": "http://p", "prometheus.ca_file": Path("/nope.pem")},
            "not a readable file",
        ),
    ],
)
def test_bad_prometheus_settings(flags: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load(flags, environ={})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://alice:hunter2@prom.example", "put no credentials in the Prometheus URL"),
        ("http://[::1", "is not a valid URL"),
        ("http://prom:99999", "is not a valid URL"),
        ("http://", "has no host"),
    ],
)
def test_bad_urls_are_refused_without_echoing_a_password(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as err:
        load({"prometheus.url": url}, environ={})
    assert "hunter2" not in str(err.value)


def test_secrets_and_headers_never_show_in_repr(tmp_path: Path) -> None:
    settings = load(
        {"prometheus.url": "http://p", "prometheus.headers": ("X-Api-Key: k3y",)},
        environ={"MESHTOP_PROMETHEUS_TOKEN": "t0ken"},
    )
    shown = repr(settings)
    assert "k3y" not in shown and "t0ken" not in shown


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"prometheus.namespaces": ('book"info',)}, "is not a Kubernetes namespace name"),
        ({"prometheus.headers": ("X-Key: a\u20acb",)}, "characters HTTP headers cannot carry"),
    ],
)
def test_values_that_would_break_a_query_or_a_header(
    flags: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        load({"prometheus.url": "http://p", **flags}, environ={})


def test_config_file_values_of_the_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[prometheus]\nurl = "http://p"\ntoken_file = 5\n')
    with pytest.raises(UsageError, match="prometheus token_file: 5 is not a file name"):
        load(config_file=path, environ={})
    binary = tmp_path / "token"
    binary.write_bytes(b"\xff\xfe")
    settings = load({"prometheus.url": "http://p", "prometheus.token_file": binary}, environ={})
    # said when Prometheus is asked, not before: `export --demo` never needs the token
    from meshtop.sources.prometheus import PrometheusMetrics

    with pytest.raises(UsageError, match="is not text"):
        PrometheusMetrics(settings.clusters[0].prometheus)  # type: ignore[arg-type]


def test_the_readme_config_does_not_stop_the_demo(tmp_path: Path) -> None:
    """The README's example names a token file this machine has not got: a command that
    never asks Prometheus (export --demo) runs; one that does says why it cannot."""
    from .test_cli import meshtop

    config = tmp_path / "config.toml"
    config.write_text(
        '[prometheus]\nurl = "https://thanos.example.com/prom"\n'
        'token_file = "/nonexistent/prom-token"\n'
    )
    demo = meshtop("--config", str(config), "export", "--demo", "--format", "json",
                   "-o", str(tmp_path / "out.json"))  # fmt: skip
    assert demo.returncode == 0, demo.stderr
    real = meshtop("--config", str(config), "export", "--format", "json", "-o", "-")
    assert real.returncode == 2
    assert real.stderr.strip() == (
        "meshtop: token file /nonexistent/prom-token cannot be read: No such file or directory"
    )


def test_health_thresholds_from_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[health]\nerrors_degraded = "1%"\nerrors_failing = 0.25\n')
    t = load(config_file=path, environ={}).thresholds
    assert (t.errors_degraded, t.errors_failing) == (0.01, 0.25)
    assert (t.client_errors_degraded, t.client_errors_failing) == (0.10, 0.20)  # Kiali's


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[health]\nerrors_failing = "lots"', "is not a share such as 10% or 0.1"),
        ('[health]\nerrors_failing = "150%"', "is not between 0% and 100%"),
        ('[health]\nerrors_degraded = "20%"', "a failing threshold must be above its degraded one"),
        ('[health]\ntimeouts = "1%"', "unknown health setting 'timeouts'"),
    ],
)
def test_bad_health_settings(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load(config_file=path, environ={})


def test_tracing_from_file_environment_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[tracing]\nbackend = "tempo"\nurl = "http://tempo:3200"\ntenant = "team-a"\n')
    settings = load(config_file=path, environ={})
    assert settings.clusters[0].tracing is not None
    assert (settings.clusters[0].tracing.kind, settings.clusters[0].tracing.url) == (
        "tempo",
        "http://tempo:3200",
    )
    assert settings.clusters[0].tracing.headers == {"X-Scope-OrgID": "team-a"}
    env = load(config_file=path, environ={"MESHTOP_TRACING": "zipkin=http://zipkin:9411"})
    assert env.clusters[0].tracing is not None and env.clusters[0].tracing.kind == "zipkin"
    flag = load({"tracing.url": "jaeger=http://jaeger:16686", "tracing.tenant": "b"},
                config_file=path, environ={})  # fmt: skip
    assert flag.clusters[0].tracing is not None and flag.clusters[0].tracing.kind == "jaeger"
    assert flag.clusters[0].tracing.headers["X-Scope-OrgID"] == "b"
    assert load(environ={}).clusters[0].tracing is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[tracing]\nurl = "http://j:16686"\nretries = 1', "unknown tracing setting 'retries'"),
        ('[tracing]\ntenant = "a"', "tracing settings are given but no url"),
        ('[tracing]\nbackend = "honeycomb"\nurl = "http://h"', "write jaeger=URL"),
        ('tracing = "jaeger"', "tracing must be a table"),
    ],
)
def test_bad_tracing_settings(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        load(config_file=path, environ={})


def test_kubernetes_from_file_environment_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[kubernetes]\ncontext = "staging"\nkubeconfig = "~/kube/config"\n')
    settings = load(config_file=path, environ={})
    assert (
        settings.clusters[0].context == "staging"
        and settings.clusters[0].kubeconfig == Path("~/kube/config").expanduser()
    )
    assert load(config_file=path, environ={"MESHTOP_CONTEXT": "prod"}).clusters[0].context == "prod"
    flagged = load(
        {"kubernetes.context": "dev"}, config_file=path, environ={"MESHTOP_CONTEXT": "prod"}
    )
    assert flagged.clusters[0].context == "dev"
    path.write_text('[kubernetes]\ncluster = "x"\n')
    with pytest.raises(UsageError, match="unknown kubernetes setting 'cluster'"):
        load(config_file=path, environ={})


def test_the_root_namespace_from_the_config_file_reaches_the_control_plane(
    tmp_path: Path,
) -> None:
    """[mesh] root_namespace: Istio's istio-system without it; with it, the Kubernetes
    control plane the posture is read from takes it (its mesh-wide policies are there)."""
    from meshtop.connect import cluster_plane

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: c, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: c}}]\n"
    )
    path = tmp_path / "config.toml"
    path.write_text(f'[kubernetes]\nkubeconfig = "{kubeconfig}"\n')
    default = load(config_file=path, environ={})
    assert default.root_namespace == "istio-system"
    assert cluster_plane(default, default.clusters[0], ()).config.root_namespace == "istio-system"
    path.write_text(path.read_text() + '[mesh]\nroot_namespace = "istio-config"\n')
    settings = load(config_file=path, environ={})
    assert settings.root_namespace == "istio-config"
    plane = cluster_plane(settings, settings.clusters[0], ("bookinfo",))
    assert plane.config.root_namespace == "istio-config"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[mesh]\nroot_namespace = "Istio-System"', r"'Istio-System' is not a Kubernetes"),
        ('[mesh]\nroot_namespace = "istio.config"', r"'istio.config' is not a Kubernetes"),
        ('[mesh]\nroot_namespace = "-istio"', r"'-istio' is not a Kubernetes namespace"),
        ('[mesh]\nroot_namespace = ""', r"'' is not a Kubernetes namespace"),
        (f'[mesh]\nroot_namespace = "{"a" * 64}"', r"is not a Kubernetes namespace \(.*63 at most"),
        ("[mesh]\nroot_namespace = 42", r"42 is not a Kubernetes namespace"),
        ('[mesh]\nroot_namespace = "a\\u001b[31m"', r"'a\\x1b\[31m' is not a Kubernetes"),
        ('[mesh]\nroot = "istio-config"', "unknown mesh setting 'root'; known: root_namespace"),
        ('mesh = "istio-config"', r"mesh must be a table \(\[mesh\]\)"),
        ('colour = "red"', r"known settings are .*\[links\], \[mesh\]$"),
    ],
)
def test_bad_mesh_settings(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message) as refused:
        load(config_file=path, environ={})
    assert "\n" not in str(refused.value) and "\x1b" not in str(refused.value)
    assert str(refused.value).startswith(f"config file {path}: ")
