"""A FAKE of the Langfuse server's REST API, on loopback, for tests (the real server cannot run on these machines).

It records every request and keeps the state the real SDK reads back: one project, datasets and their items
(upserted by id, as the real API does). Everything else (scores, ingestion batches) is accepted and recorded.
Spans are not sent here: tests give the SDK an in-memory OpenTelemetry exporter.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

PROJECT = {"id": "fake-project", "name": "fake", "organization": {"id": "fake-org", "name": "fake"}, "metadata": {}}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeLangfuse:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> item
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posted(self, path: str) -> list[Any]:
        return [r["body"] for r in self.requests if r["method"] == "POST" and r["path"] == path]

    def scores(self) -> list[dict[str, Any]]:
        """Every score the SDK sent, however it batched them."""
        found = [s for b in self.posted("/api/public/scores") for s in (b if isinstance(b, list) else [b])]
        for batch in self.posted("/api/public/ingestion"):
            found += [e["body"] for e in batch.get("batch", []) if e.get("type") == "score-create"]
        return found

    def dataset_items(self, dataset: str) -> list[dict[str, Any]]:
        return [i for i in self.items.values() if i["datasetName"] == dataset]

    # -- the endpoints ------------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: dict[str, str]
    ) -> tuple[int, Any]:
        with self.lock:
            self.requests.append({"method": method, "path": path, "query": query, "body": body, "headers": headers})
            if method == "GET" and path == "/api/public/projects":
                return 200, {"data": [PROJECT]}
            if path.startswith("/api/public/v2/datasets/") and method == "GET":
                name = unquote(path.removeprefix("/api/public/v2/datasets/"))
                found = self.datasets.get(name)
                return (200, found) if found else (404, {"message": f"dataset {name} not found"})
            if path == "/api/public/v2/datasets" and method == "POST":
                dataset = {
                    "id": f"ds-{uuid.uuid4().hex[:8]}",
                    "name": body["name"],
                    "description": body.get("description"),
                    "metadata": body.get("metadata"),
                    "projectId": PROJECT["id"],
                    "createdAt": _now(),
                    "updatedAt": _now(),
                }
                self.datasets[body["name"]] = dataset
                return 200, dataset
            if path == "/api/public/dataset-items" and method == "GET":
                return 200, self._page(query)
            if path == "/api/public/dataset-items" and method == "POST":
                return self._upsert(body)
            return (202 if path == "/api/public/scores" else 200), {"message": "Accepted"}

    def _page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        name = query.get("datasetName", [""])[0]
        page, limit = int(query.get("page", ["1"])[0]), int(query.get("limit", ["50"])[0])
        items = self.dataset_items(name)
        pages = max(1, -(-len(items) // limit))
        data = items[(page - 1) * limit : page * limit]
        return {"data": data, "meta": {"page": page, "limit": limit, "totalItems": len(items), "totalPages": pages}}

    def _upsert(self, body: dict[str, Any]) -> tuple[int, Any]:
        dataset = self.datasets.get(body["datasetName"])
        if dataset is None:
            return 404, {"message": f"dataset {body['datasetName']} not found"}
        identifier = body.get("id") or str(uuid.uuid4())
        before = self.items.get(identifier, {})
        item = {
            "id": identifier,
            "status": body.get("status") or before.get("status") or "ACTIVE",
            "input": body.get("input"),
            "expectedOutput": body.get("expectedOutput"),
            "metadata": body.get("metadata"),
            "sourceTraceId": body.get("sourceTraceId"),
            "sourceObservationId": body.get("sourceObservationId"),
            "datasetId": dataset["id"],
            "datasetName": dataset["name"],
            "createdAt": before.get("createdAt", _now()),
            "updatedAt": _now(),
            "mediaReferences": [],
        }
        self.items[identifier] = item
        return 200, item


def serve() -> tuple[FakeLangfuse, ThreadingHTTPServer]:
    fake = FakeLangfuse()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            parsed = urlparse(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            json_body = "json" in (self.headers.get("Content-Type") or "")
            body = json.loads(raw) if raw and json_body else raw  # OTLP span exports are protobuf
            status, answer = fake.handle(method, parsed.path, parse_qs(parsed.query), body, dict(self.headers))
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    return fake, server
