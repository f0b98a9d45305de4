"""A STAC API on 127.0.0.1 for tests: landing page, collections, item search, and assets with range reads.

It counts the bytes it serves per asset and can be told to misbehave for an asset: answer 500, 403
(an expired signature: only ``?token=<current>`` links are served when ``token`` is set), 429, or stall.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ITEM_SEARCH = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
               "https://api.stacspec.org/v1.0.0/collections", "https://api.stacspec.org/v1.0.0/item-search#query"]


def _overlaps(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


class StacServer:
    def __init__(self, assets_dir: Path):
        self.assets_dir = Path(assets_dir)
        self.items: dict[str, list[dict]] = defaultdict(list)
        self.bytes_served: dict[str, int] = defaultdict(int)
        self.requests: list[str] = []
        self.faults: dict[str, list[str]] = defaultdict(list)  # asset name -> actions, used in order
        self.token: str | None = None
        self.stall_s = 5.0
        self.search_status: int | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def asset_url(self, name: str) -> str:
        return f"{self.url}/assets/{name}"

    def add_item(self, collection: str, item: dict) -> None:
        self.items[collection].append(item)

    def __enter__(self) -> StacServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset_counts(self) -> None:
        with self._lock:
            self.bytes_served.clear()
            self.requests.clear()

    # ---------------------------------------------------------------- STAC

    def landing(self) -> dict:
        links = [{"rel": "self", "href": self.url, "type": "application/json"},
                 {"rel": "root", "href": self.url, "type": "application/json"},
                 {"rel": "data", "href": f"{self.url}/collections", "type": "application/json"},
                 {"rel": "conformance", "href": f"{self.url}/conformance", "type": "application/json"},
                 {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json", "method": "GET"},
                 {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json", "method": "POST"}]
        return {"type": "Catalog", "id": "test-stac", "stac_version": "1.0.0", "description": "Test STAC API",
                "conformsTo": ITEM_SEARCH, "links": links}

    def collection(self, cid: str) -> dict:
        links = [{"rel": "self", "href": f"{self.url}/collections/{cid}"}, {"rel": "root", "href": self.url},
                 {"rel": "items", "href": f"{self.url}/collections/{cid}/items"}]
        return {"type": "Collection", "id": cid, "stac_version": "1.0.0", "description": cid,
                "license": "proprietary", "links": links,
                "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}}}

    def search(self, body: dict) -> dict:
        bbox = body.get("bbox")
        start, end = (body.get("datetime") or "../..").split("/")
        query = body.get("query") or {}
        found = []
        for cid in body.get("collections") or list(self.items):
            for item in self.items.get(cid, []):
                props = item["properties"]
                day = (props.get("datetime") or props.get("start_datetime"))[:10]
                if start not in ("..", "") and day < start[:10] or end not in ("..", "") and day > end[:10]:
                    continue
                if bbox and not _overlaps(item["bbox"], [float(b) for b in bbox]):
                    continue
                limit = query.get("eo:cloud_cover", {}).get("lte")
                if limit is not None and props.get("eo:cloud_cover", 0) > limit:
                    continue
                found.append({**item, "collection": cid, "links": [{"rel": "self", "href": f"{self.url}/x"}]})
        return {"type": "FeatureCollection", "features": found, "links": [],
                "context": {"returned": len(found)}}

    def route(self, path: str, query: dict, body: dict | None) -> tuple[int, dict]:
        """The JSON answer (status, body) to a STAC request."""
        if path == "":
            return 200, self.landing()
        if path == "/conformance":
            return 200, {"conformsTo": ITEM_SEARCH}
        if path == "/collections":
            return 200, {"collections": [self.collection(c) for c in self.items], "links": []}
        m = re.fullmatch(r"/collections/([^/]+)", path)
        if m:
            if m.group(1) not in self.items:
                return 404, {"code": "NotFound", "description": "no such collection"}
            return 200, self.collection(m.group(1))
        if path != "/search":
            return 404, {"code": "NotFound"}
        if self.search_status:
            return self.search_status, {"code": "Error", "description": "rate limited"}
        if body is None:
            body = {"collections": query.get("collections", [""])[0].split(","),
                    "bbox": query["bbox"][0].split(",") if "bbox" in query else None,
                    "datetime": query.get("datetime", [None])[0]}
        return 200, self.search(body)

    def asset(self, name: str, query: dict, rng: str | None) -> tuple[int, dict, bytes] | None:
        """(status, headers, bytes) of an asset request, honouring Range; None to stall and hang up."""
        with self._lock:
            self.requests.append(name)
            action = self.faults[name].pop(0) if self.faults.get(name) else None
        if action == "stall":
            time.sleep(self.stall_s)
            return None
        if action in ("500", "429", "503"):
            return int(action), {}, b'{"error": "%s"}' % action.encode()
        if action == "403" or (self.token is not None and query.get("token", [None])[0] != self.token):
            return 403, {}, b'{"error": "AuthenticationFailed: signature expired"}'
        file = self.assets_dir / name
        if not file.is_file():
            return 404, {}, b'{"error": "not found"}'
        size = file.stat().st_size
        start, end = 0, size - 1
        headers = {"Content-Type": "image/tiff", "Accept-Ranges": "bytes",
                   "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT"}
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            start, end = int(m.group(1)), min(int(m.group(2)) if m.group(2) else size - 1, size - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        with file.open("rb") as f:
            f.seek(start)
            data = f.read(end - start + 1)
        return (206 if rng else 200), headers, data

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, headers: dict, data: bytes, count: str | None = None) -> None:
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                    if count:
                        with server._lock:
                            server.bytes_served[count] += len(data)

            def do_GET(self):
                self._route(None)

            def do_HEAD(self):
                self._route(None)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                self._route(json.loads(self.rfile.read(length) or b"{}"))

            def _route(self, body):
                url = urlparse(self.path)
                path, query = url.path.rstrip("/"), parse_qs(url.query)
                if not path.startswith("/assets/"):
                    status, answer = server.route(path, query, body)
                    return self._send(status, {}, json.dumps(answer).encode())
                name = path[len("/assets/"):]
                answer = server.asset(name, query, self.headers.get("Range"))
                if answer is None:
                    self.close_connection = True
                    return None
                return self._send(*answer, count=name if answer[0] in (200, 206) else None)

        return Handler


def iso(day: dt.date) -> str:
    return f"{day.isoformat()}T15:50:00Z"
