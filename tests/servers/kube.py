"""A real Kubernetes API server for the tests: etcd and kube-apiserver as built by
tests/servers/kube-apiserver.sh (`make tools`), started on free loopback ports with their
data in a temporary directory, once per test session (and a second one, as another
cluster, when a test asks for two), stopped at the end.

The server runs with `--authorization-mode=RBAC` and a static token file of four users:

- `admin`: in `system:masters`, sets everything up and is the "second writer";
- `reader`: get, list and watch on everything meshtop reads, and nothing more;
- `restricted`: the same reads, and may change DestinationRules, but not patch
  VirtualServices or HTTPRoutes;
- `nobody`: known to the server, bound to no role at all.

It has the Istio and Gateway API CRDs with their real schemas (from the `istio.io/api` and
`sigs.k8s.io/gateway-api` Go modules, copied by the script), Established before any test
runs. Each test gets a namespace of its own with Bookinfo's manifests from the shared
fixtures applied (`bookinfo` fixture), and a kubeconfig per user (`KubeServer.kubeconfig`).
An `Interposer` (a loopback HTTP proxy in front of the server) lets a test have the second
writer change a route between meshtop's read and its write, as a race would."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from ..conftest import FIXTURES, need
from . import CACHE

SCRIPT = Path(__file__).with_name("kube-apiserver.sh")
KUBE_VERSION = re.search(r"^KUBE_VERSION=(\S+)", SCRIPT.read_text(), re.M).group(1)  # type: ignore[union-attr]
HOME = CACHE / f"kube-apiserver-{KUBE_VERSION}"
BIN = HOME / "bin"
CRDS = HOME / "crds"
ISTIO = FIXTURES / "istio"
# Bookinfo as each test's namespace has it: later documents replace earlier ones of the
# same kind and name (reviews at 90/10 instead of all-v1's reviews).
BOOKINFO = (
    ISTIO / "platform-kube" / "bookinfo.yaml",
    ISTIO / "platform-kube" / "bookinfo-versions.yaml",
    ISTIO / "networking" / "destination-rule-all.yaml",
    ISTIO / "networking" / "virtual-service-all-v1.yaml",
    ISTIO / "networking" / "virtual-service-reviews-90-10.yaml",
    ISTIO / "gateway-api" / "route-reviews-90-10.yaml",
)
CUSTOM = {  # kind -> (group, plural)
    "VirtualService": ("networking.istio.io", "virtualservices"),
    "DestinationRule": ("networking.istio.io", "destinationrules"),
    "HTTPRoute": ("gateway.networking.k8s.io", "httproutes"),
    "PeerAuthentication": ("security.istio.io", "peerauthentications"),
    "AuthorizationPolicy": ("security.istio.io", "authorizationpolicies"),
    "ServiceEntry": ("networking.istio.io", "serviceentries"),
    "WorkloadEntry": ("networking.istio.io", "workloadentries"),
}
READS = [  # what meshtop reads: the reader's and the restricted user's rules
    {"apiGroups": [""], "resources": ["services", "namespaces"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "statefulsets"],
     "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["networking.istio.io"], "resources": ["virtualservices", "destinationrules",
     "serviceentries", "workloadentries"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["security.istio.io"], "resources": ["peerauthentications",
     "authorizationpolicies"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["gateway.networking.k8s.io"], "resources": ["httproutes"],
     "verbs": ["get", "list", "watch"]},
]  # fmt: skip
DESTINATION_RULE_WRITES = [
    {"apiGroups": ["networking.istio.io"], "resources": ["destinationrules"],
     "verbs": ["patch", "update"]},
]  # fmt: skip
USERS = ("admin", "reader", "restricted", "nobody")
STARTUP_S = 60.0


def binaries_missing() -> str | None:
    """Why the server cannot be started here, or None."""
    for name in ("etcd", "kube-apiserver"):
        if not (BIN / name).exists():
            return f"{BIN / name} is not built: run `make tools` (tests/servers/kube-apiserver.sh)"
    if not (CRDS / "istio.yaml").is_file() or not list((CRDS / "gateway-api").glob("*.yaml")):
        return f"the CRDs are not in {CRDS}: run `make tools` (tests/servers/kube-apiserver.sh)"
    if shutil.which("openssl") is None:
        return "openssl is not installed (it makes the test server's certificate and keys)"
    if not FIXTURES.is_dir():
        return f"the shared fixtures are not at {FIXTURES}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gone(Exception):
    """What `poll` waits on will never be: a server process has exited."""


def poll(what: str, ready: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    """Until `ready()` says so (an exception is a no), or fail saying what did not happen."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except Gone as exc:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} will not happen: {exc}\n{tail}") from None
        except Exception as exc:  # not yet: said if it never is
            last = exc
        time.sleep(0.05)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not happen within {timeout:.0f}s ({last!r})\n{tail}")


@dataclass
class KubeServer:
    """One cluster: etcd and kube-apiserver on loopback, and the users' tokens."""

    name: str
    root: Path
    url: str = ""
    ca: Path = field(default_factory=Path)
    tokens: dict[str, str] = field(default_factory=dict)
    started_in_s: float = 0.0  # from starting etcd to the CRDs Established and RBAC in force
    apiserver_ready_in_s: float = 0.0  # from starting kube-apiserver to /readyz ok
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # -- starting and stopping ------------------------------------------------------------

    def start(self) -> None:
        began = time.monotonic()
        self.root.mkdir(parents=True, exist_ok=True)
        certs = self.root / "certs"
        certs.mkdir()
        self.ca = certs / "server.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(certs / "server.key"), "-out", str(self.ca), "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
             "-out", str(certs / "service-account.key")],
            check=True, capture_output=True,
        )  # fmt: skip
        self.tokens = {user: secrets.token_hex(16) for user in USERS}
        tokens = self.root / "tokens.csv"
        tokens.write_text(
            f'{self.tokens["admin"]},admin,uid-admin,"system:masters"\n'
            f"{self.tokens['reader']},reader,uid-reader\n"
            f"{self.tokens['restricted']},restricted,uid-restricted\n"
            f"{self.tokens['nobody']},nobody,uid-nobody\n"
        )
        tokens.chmod(0o600)

        client_port, peer_port, secure_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        etcd_log = self.root / "etcd.log"
        self._spawn(
            [str(BIN / "etcd"), "--name", self.name, "--data-dir", str(self.root / "etcd"),
             "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
             "--initial-cluster", f"{self.name}=http://127.0.0.1:{peer_port}",
             "--unsafe-no-fsync", "--log-level", "warn"],
            etcd_log,
        )  # fmt: skip
        poll(
            "etcd answering /health",
            lambda: b'"health":"true"' in _get(f"{etcd_url}/health").replace(b" ", b""),
            STARTUP_S,
            etcd_log,
        )
        self.url = f"https://127.0.0.1:{secure_port}"
        api_log = self.root / "kube-apiserver.log"
        api_began = time.monotonic()
        self._spawn(
            [str(BIN / "kube-apiserver"), "--etcd-servers", etcd_url,
             "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
             "--secure-port", str(secure_port),
             "--tls-cert-file", str(self.ca), "--tls-private-key-file", str(certs / "server.key"),
             "--authorization-mode", "RBAC", "--token-auth-file", str(tokens),
             "--service-account-issuer", "https://kubernetes.default.svc",
             "--service-account-key-file", str(certs / "service-account.key"),
             "--service-account-signing-key-file", str(certs / "service-account.key"),
             "--service-cluster-ip-range", "10.96.0.0/16",
             # no Endpoints for the `kubernetes` Service: there is no cluster to reach it from
             # (and 127.0.0.1 is refused as the address one would advertise)
             "--endpoint-reconciler-type", "none",
             "--enable-priority-and-fairness=false", "--profiling=false", "-v", "1"],
            api_log,
        )  # fmt: skip
        poll("kube-apiserver ready (/readyz)", self._ready, STARTUP_S, api_log)
        self.apiserver_ready_in_s = time.monotonic() - api_began
        self._install_crds()
        self._install_rbac()
        self.started_in_s = time.monotonic() - began

    def _spawn(self, argv: list[str], log: Path) -> None:
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)  # fmt: skip
            self._procs.append(proc)
        if self._procs[-1].poll() is not None:
            raise RuntimeError(f"{argv[0]} exited at once:\n{log.read_text()[-3000:]}")

    def _ready(self) -> bool:
        for proc in self._procs:
            if proc.poll() is not None:
                raise Gone(f"{proc.args[0]!s} exited with {proc.returncode}")  # type: ignore[index]
        request = http.client.HTTPSConnection(
            "127.0.0.1", int(urlparse(self.url).port or 0), context=self.ssl_context(), timeout=5
        )
        try:
            request.request("GET", "/readyz", headers=self.auth("admin"))
            return request.getresponse().status == 200
        finally:
            request.close()

    def stop(self) -> None:
        for proc in reversed(self._procs):  # kube-apiserver first, then etcd
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        self._procs.clear()

    # -- talking to it --------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def api(self, user: str = "admin") -> Any:
        """The official Python client as `user` (a `kubernetes.client.ApiClient`)."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        configuration.ssl_ca_cert = str(self.ca)
        configuration.api_key = {"authorization": f"Bearer {self.tokens[user]}"}
        return client.ApiClient(configuration)

    def kubeconfig(
        self, path: Path, user: str = "admin", *, context: str | None = None,
        server: str | None = None,
    ) -> Path:  # fmt: skip
        """A kubeconfig whose one (current) context, `context` (default: the user's name),
        is `user` on this server (or on `server`, an Interposer's plain-HTTP URL)."""
        write_kubeconfig(path, [(context or user, self, user, server)])
        return path

    # -- what the tests need in it --------------------------------------------------------

    def _install_crds(self) -> None:
        from kubernetes import client

        ext = client.ApiextensionsV1Api(self.api())
        files = [CRDS / "istio.yaml", *sorted((CRDS / "gateway-api").glob("*.yaml"))]
        names = []
        for path in files:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc and doc.get("kind") == "CustomResourceDefinition":
                    ext.create_custom_resource_definition(doc)
                    names.append(doc["metadata"]["name"])

        def established() -> bool:
            listed = ext.list_custom_resource_definition().items
            ok = {
                crd.metadata.name
                for crd in listed
                if any(
                    c.type == "Established" and c.status == "True"
                    for c in crd.status.conditions or ()
                )
            }
            return set(names) <= ok

        poll("the CRDs Established", established, STARTUP_S)

    def _install_rbac(self) -> None:
        from kubernetes import client

        rbac = client.RbacAuthorizationV1Api(self.api())
        roles = {"meshtop-reader": READS, "meshtop-destinationrule-editor": DESTINATION_RULE_WRITES}
        for name, rules in roles.items():
            rbac.create_cluster_role({"metadata": {"name": name}, "rules": rules})
        bindings = [("reader", "meshtop-reader"), ("restricted", "meshtop-reader"),
                    ("restricted", "meshtop-destinationrule-editor")]  # fmt: skip
        for user, role in bindings:
            rbac.create_cluster_role_binding({
                "metadata": {"name": f"{user}-{role}"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                            "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                              "name": user}],
            })  # fmt: skip
        # RBAC is read from the authorizer's cache: poll until the bindings are in force
        for user in ("reader", "restricted"):
            custom = client.CustomObjectsApi(self.api(user))
            poll(
                f"RBAC letting {user} list VirtualServices",
                lambda custom=custom: (
                    custom.list_cluster_custom_object(
                        "networking.istio.io", "v1", "virtualservices"
                    )
                    is not None
                ),
                STARTUP_S,
            )

    def namespace(self, namespace: str | None = None) -> str:
        """A new namespace (by default, a name no other test has) with Bookinfo in it
        (Services, Deployments, DestinationRules, VirtualServices, the reviews HTTPRoute):
        its name."""
        from kubernetes import client

        namespace = namespace or f"bookinfo-{next(_NAMESPACES)}"
        api = self.api()
        client.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
        docs: dict[tuple[str, str], dict[str, Any]] = {}
        for path in BOOKINFO:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    docs[(doc["kind"], doc["metadata"]["name"])] = doc
        for doc in docs.values():
            self.create(doc, namespace, api)
        return namespace

    def create(self, doc: dict[str, Any], namespace: str, api: Any = None) -> dict[str, Any]:
        """One manifest created as the admin, whatever its kind (one of Bookinfo's)."""
        from kubernetes import client, utils

        api = api or self.api()
        if doc["kind"] in CUSTOM:
            group, plural = CUSTOM[doc["kind"]]
            version = doc["apiVersion"].split("/")[1]
            created: dict[str, Any] = client.CustomObjectsApi(api).create_namespaced_custom_object(
                group, version, namespace, plural, doc
            )
            return created
        utils.create_from_dict(api, doc, namespace=namespace)
        return doc

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """A route or DestinationRule as the server has it now (read as the admin)."""
        from kubernetes import client

        group, plural = CUSTOM[kind]
        obj: dict[str, Any] = client.CustomObjectsApi(self.api()).get_namespaced_custom_object(
            group, "v1", namespace, plural, name
        )
        return obj

    def patch(
        self, kind: str, namespace: str, name: str, ops: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The second writer: a JSON patch as the admin, as `kubectl patch --type json` sends."""
        from kubernetes import client

        group, plural = CUSTOM[kind]
        obj: dict[str, Any] = client.CustomObjectsApi(self.api()).patch_namespaced_custom_object(
            group, "v1", namespace, plural, name, ops,
            _content_type="application/json-patch+json",
        )  # fmt: skip
        return obj


def write_kubeconfig(path: Path, contexts: list[tuple[str, KubeServer, str, str | None]]) -> Path:
    """A kubeconfig with one context per (name, server, user, URL or None); the first is
    current. With a URL (an Interposer's), the context goes through it."""
    clusters, users, entries = [], [], []
    for name, server, user, url in contexts:
        cluster: dict[str, Any] = {"server": url} if url else {
            "server": server.url, "certificate-authority": str(server.ca)}  # fmt: skip
        clusters.append({"name": name, "cluster": cluster})
        users.append({"name": name, "user": {"token": server.tokens[user]}})
        entries.append({"name": name, "context": {"cluster": name, "user": name}})
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": contexts[0][0],
        "clusters": clusters, "contexts": entries, "users": users,
    }))  # fmt: skip
    path.chmod(0o600)
    return path


def _get(url: str) -> bytes:
    parsed = urlparse(url)
    conn = http.client.HTTPConnection(parsed.hostname or "", parsed.port or 80, timeout=5)
    try:
        conn.request("GET", parsed.path)
        return conn.getresponse().read()
    finally:
        conn.close()


# -- the servers, once per session --------------------------------------------------------

_started: dict[str, KubeServer] = {}
_NAMESPACES = itertools.count()


def _server(name: str, tmp_path_factory: pytest.TempPathFactory) -> KubeServer:
    """The session's server `name`, started on first use (a test module that imports the
    fixtures gets the same one as another)."""
    why = binaries_missing()
    need(why is None, why or "")
    for attempt in (1, 2, 3):
        if name in _started:
            break
        server = KubeServer(name, tmp_path_factory.mktemp(f"kube-{name}"))
        try:
            server.start()
        except RuntimeError as exc:
            server.stop()
            # a free port taken by someone else between our look and the server's bind
            if "address already in use" not in str(exc) or attempt == 3:
                raise
            continue
        except BaseException:
            server.stop()
            raise
        _started[name] = server
    return _started[name]


def _stop(name: str) -> None:
    server = _started.pop(name, None)
    if server is not None:
        server.stop()


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeServer]:
    """The real API server (the cluster `east`), for the whole session."""
    yield _server("east", tmp_path_factory)
    _stop("east")


@pytest.fixture(scope="session")
def kube_west(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeServer]:
    """A second real API server, another cluster (`west`), started only if a test asks."""
    yield _server("west", tmp_path_factory)
    _stop("west")


@pytest.fixture
def bookinfo(kube: KubeServer) -> str:
    """A namespace of this test's own on the real server, with Bookinfo in it."""
    return kube.namespace()


# -- a second writer between meshtop's read and its write ---------------------------------


class Interposer:
    """A plain-HTTP proxy on loopback in front of a real API server: it passes every request
    through unchanged (the user's own token included) and records it; `before_next_write`,
    when set, is run once just before the next PATCH that is not a dry run is passed on,
    so a real second writer changes the object between meshtop's read and its write."""

    def __init__(self, server: KubeServer) -> None:
        self.server = server
        self.before_next_write: Callable[[], None] | None = None
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._closed = False
        self._connections: set[socket.socket] = set()
        interposer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with interposer.lock:
                    interposer._connections.add(self.connection)

            def finish(self) -> None:
                with interposer.lock:
                    interposer._connections.discard(self.connection)
                super().finish()

            def _pass(self) -> None:
                interposer._pass(self)

            do_GET = do_PATCH = do_POST = do_PUT = do_DELETE = _pass

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def _pass(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        url = urlparse(handler.path)
        query = parse_qs(url.query)
        with self.lock:
            self.requests.append({"verb": handler.command, "path": url.path, "query": query,
                                  "body": json.loads(body) if body else None})  # fmt: skip
            hook = None
            if handler.command == "PATCH" and "All" not in query.get("dryRun", []):
                hook, self.before_next_write = self.before_next_write, None
        if hook is not None:
            hook()
        port = int(urlparse(self.server.url).port or 0)
        upstream = http.client.HTTPSConnection(
            "127.0.0.1", port, context=self.server.ssl_context(), timeout=30
        )
        try:
            headers = {k: v for k, v in handler.headers.items()
                       if k.lower() not in ("host", "connection", "accept-encoding")}  # fmt: skip
            upstream.request(handler.command, handler.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            handler.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                    handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        finally:
            upstream.close()

    def close(self) -> None:
        """Out of reach from now on: no new connection, and the open ones (a client's
        keep-alive pool) cut. Once; again is nothing."""
        if self._closed:
            return
        self._closed = True
        self._http.shutdown()
        self._http.server_close()
        with self.lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def interposed(server: KubeServer) -> Iterator[Interposer]:
    proxy = Interposer(server)
    try:
        yield proxy
    finally:
        proxy.close()
