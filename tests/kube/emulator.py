"""A Kubernetes API emulator with real REST semantics, for the Kubernetes adapter's tests:
objects with resource versions; list and get; PATCH with `application/json-patch+json`
(RFC 6902, `test` included: a failed test is 422, nothing written); `dryRun=All`; 403 where
RBAC would refuse; 404 for an unknown object, and for an API version it does not serve;
Status bodies as the API server writes them. It records every request it was sent."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

PLURALS = {
    "VirtualService": "virtualservices",
    "DestinationRule": "destinationrules",
    "HTTPRoute": "httproutes",
    "Deployment": "deployments",
    "Service": "services",
}
PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?$"
)


class Emulator:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (plural, ns, name)
        self.served: dict[str, set[str]] = {  # group -> versions served
            "networking.istio.io": {"v1", "v1beta1"},
            "gateway.networking.k8s.io": {"v1"},
            "apps": {"v1"},
        }
        self.forbidden: set[tuple[str, str]] = set()  # (verb, namespace)
        self.conflict_next = False  # answer the next write 409, as an update race would
        # someone else's write, landing just before meshtop's next real (not dry-run) patch
        self.before_next_write: Any = None
        self.requests: list[dict[str, Any]] = []
        self._version = 1000
        self.lock = threading.Lock()

    def add(self, obj: dict[str, Any], namespace: str = "bookinfo") -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", namespace)
        self._version += 1
        meta["resourceVersion"] = str(self._version)
        self.objects[(PLURALS[obj["kind"]], meta["namespace"], meta["name"])] = obj
        return obj

    def load(self, path: Path, namespace: str = "bookinfo") -> None:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in PLURALS:
                self.add(doc, namespace)

    def touch(self, plural: str, namespace: str, name: str, change: Any = None) -> None:
        """Someone else's write: the object changes and its version moves on."""
        obj = self.objects[(plural, namespace, name)]
        if change is not None:
            change(obj)
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


def _pointer(doc: Any, path: str) -> tuple[Any, str]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]
    for p in parts[:-1]:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc, parts[-1]


def apply_json_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 test/add/replace/remove; raises ValueError on a failed test or a bad path."""
    out = copy.deepcopy(obj)
    for op in ops:
        parent, key = _pointer(out, op["path"])
        index: Any = int(key) if isinstance(parent, list) else key
        if op["op"] == "test":
            if parent[index] != op["value"]:
                raise ValueError(f"testing value {op['path']} failed")
        elif op["op"] in ("add", "replace"):
            if op["op"] == "replace" and (
                index not in parent if isinstance(parent, dict) else False
            ):
                raise ValueError(f"replace: {op['path']} is missing")
            parent[index] = op["value"]
        elif op["op"] == "remove":
            del parent[index]
        else:
            raise ValueError(f"op {op['op']} is not supported")
    return out


class _Handler(BaseHTTPRequestHandler):
    emulator: Emulator

    def _send(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self, verb: str) -> None:
        e = self.emulator
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        e.requests.append({"verb": verb, "path": url.path, "query": parse_qs(url.query),
                           "content_type": self.headers.get("Content-Type"),
                           "body": json.loads(body) if body else None})  # fmt: skip
        m = PATH.match(url.path)
        if not m:
            return self._send(
                404, _status(404, "NotFound", "the server could not find the requested resource")
            )
        group, version, ns, plural, name = (
            m["group"] or "",
            m["version"] or "v1",
            m["ns"],
            m["plural"],
            m["name"],
        )
        if group and version not in e.served.get(group, set()):
            return self._send(
                404, _status(404, "NotFound", "the server could not find the requested resource")
            )
        if (verb, ns or "") in e.forbidden:
            return self._send(
                403,
                _status(
                    403,
                    "Forbidden",
                    f'{plural} is forbidden: User "meshtop" cannot {verb} resource '
                    f'"{plural}" in the namespace "{ns}"',
                ),
            )
        with e.lock:
            if name is None:
                items = [
                    o
                    for (p, n, _), o in sorted(e.objects.items())
                    if p == plural and (ns is None or n == ns)
                ]
                return self._send(
                    200,
                    {
                        "kind": "List",
                        "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(e._version)},
                        "items": items,
                    },
                )
            key = (plural, ns or "", name)
            if key not in e.objects:
                return self._send(
                    404, _status(404, "NotFound", f'{plural}.{group} "{name}" not found')
                )
            if verb == "get":
                return self._send(200, e.objects[key])
            if e.conflict_next:
                e.conflict_next = False
                return self._send(
                    409,
                    _status(
                        409,
                        "Conflict",
                        f'Operation cannot be fulfilled on {plural}.{group} "{name}": '
                        "the object has been modified",
                    ),
                )
            if self.headers.get("Content-Type") != "application/json-patch+json":
                return self._send(
                    415,
                    _status(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format",
                    ),
                )
            try:
                updated = apply_json_patch(e.objects[key], json.loads(body))
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                return self._send(
                    422, _status(422, "Invalid", f'{plural}.{group} "{name}" is invalid: {exc}')
                )
            if "All" in parse_qs(url.query).get("dryRun", []):
                return self._send(200, updated)
            if e.before_next_write is not None:
                change, e.before_next_write = e.before_next_write, None
                e.touch(plural, ns or "", name, change)
                try:  # meshtop's patch now meets the object as the other write left it
                    updated = apply_json_patch(e.objects[key], json.loads(body))
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    return self._send(
                        422, _status(422, "Invalid", f'{plural}.{group} "{name}" is invalid: {exc}')
                    )
            e._version += 1
            updated["metadata"]["resourceVersion"] = str(e._version)
            e.objects[key] = updated
            return self._send(200, updated)

    def do_GET(self) -> None:
        self._route("get")

    def do_PATCH(self) -> None:
        self._route("patch")

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def running(emulator: Emulator, tmp: Path) -> Iterator[Path]:
    """The emulator on a free loopback port, and a kubeconfig whose context `emulator`
    points at it: the path of that kubeconfig."""
    with running_clusters({"emulator": emulator}, tmp) as config:
        yield config


@contextmanager
def running_clusters(emulators: dict[str, Emulator], tmp: Path) -> Iterator[Path]:
    """Each emulator on a free loopback port, as the API server of one cluster, and one
    kubeconfig with a context per cluster, named as in `emulators` (the first current)."""
    servers = []
    clusters, contexts = [], []
    for name, emulator in emulators.items():
        handler = type("Handler", (_Handler,), {"emulator": emulator})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        clusters.append({"name": name, "cluster": {"server": url}})
        contexts.append({"name": name, "context": {"cluster": name, "user": "meshtop"}})
    config = tmp / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": next(iter(emulators)),
        "clusters": clusters, "contexts": contexts,
        "users": [{"name": "meshtop", "user": {"token": "emulated"}}],
    }))  # fmt: skip
    try:
        yield config
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
