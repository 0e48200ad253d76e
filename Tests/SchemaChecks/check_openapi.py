#!/usr/bin/env python3
"""Checks live responses of a real `chatledger run` against schemas/openapi.yaml.

Usage: check_openapi.py PATH/TO/chatledger

Starts `chatledger run` (embedded broker) with a keys file holding an auditor, a reader
and a writer key, produces simulated traffic with `chatledger produce`, waits until it is
applied, then sends requests that reach every path of the document and most of its
documented statuses (the write routes' 501 from a `chatledger serve` without --brokers
on the same data). Each response must have a status the document lists for that
path; a JSON body must validate against the schema given for that status; declared
headers (ETag, X-Ledger-Position, Retry-After) must match their schemas; SSE `data`
events must validate against ChangeStreamEvent, their data against ChangeEvent. Every path in the document must be exercised,
so the document and this check cannot drift apart. Exits 1 on any failure.
"""
import json
import pathlib
import re
import socket
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Support"))
import chatledger_run  # noqa: E402

import jsonschema
import referencing
import yaml

SCHEMAS = pathlib.Path(__file__).resolve().parents[2] / "schemas"
AUDITOR, READER, WRITER = "check-auditor", "check-reader", "check-writer"
failures = []
exercised = set()


def fail(message):
    failures.append(message)
    print("FAIL", message)


def load_document():
    document = yaml.safe_load((SCHEMAS / "openapi.yaml").read_text())
    event_schema = json.loads((SCHEMAS / "event.v1.schema.json").read_text())
    resource = referencing.Resource.from_contents(document, default_specification=referencing.jsonschema.DRAFT202012)
    registry = referencing.Registry().with_resources([
        ("openapi.yaml", resource),
        ("event.v1.schema.json", referencing.Resource.from_contents(event_schema)),
        (event_schema["$id"], referencing.Resource.from_contents(event_schema)),
    ])
    return document, registry


DOCUMENT, REGISTRY = load_document()


def resolve(node):
    """Follows a local $ref inside the document."""
    while isinstance(node, dict) and "$ref" in node and node["$ref"].startswith("#/"):
        target = DOCUMENT
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def absolute_refs(node):
    """The schema with local refs ("#/components/...") pointing into the document."""
    if isinstance(node, dict):
        return {key: ("openapi.yaml" + value if key == "$ref" and value.startswith("#/") else absolute_refs(value))
                for key, value in node.items()}
    if isinstance(node, list):
        return [absolute_refs(value) for value in node]
    return node


def validate(instance, schema, what):
    validator = jsonschema.Draft202012Validator(absolute_refs(schema), registry=REGISTRY)
    errors = sorted(validator.iter_errors(instance), key=lambda error: list(error.path))
    for error in errors[:3]:
        fail(f"{what}: {error.message} at {list(error.path)}")


def template_for(path):
    for template in DOCUMENT["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            return template
    return None


def check(method, target, status, headers, body, expected_status):
    path = target.split("?")[0]
    template = template_for(path)
    what = f"{method} {target} -> {status}"
    if status != expected_status:
        fail(f"{what}: expected {expected_status}")
    if template is None:
        if status != 404:
            fail(f"{what}: path not in the document")
        return
    exercised.add(template)
    # HEAD is GET without the body (RFC 9110 §9.3.2): the document lists GET only.
    operation = DOCUMENT["paths"][template].get("get" if method == "HEAD" else method.lower())
    if operation is None:
        if status != 405:
            fail(f"{what}: method not in the document")
        return
    response = operation["responses"].get(str(status))
    if response is None:
        fail(f"{what}: status not documented for {template}")
        return
    response = resolve(response)
    for name, header in response.get("headers", {}).items():
        header = resolve(header)
        value = headers.get(name.lower())
        if value is None:
            if name != "X-Ledger-Position":  # absent for a device without events
                fail(f"{what}: header {name} missing")
            continue
        schema = header["schema"]
        validate(int(value) if schema.get("type") == "integer" else value, schema, f"{what} header {name}")
    content = response.get("content")
    if method == "HEAD":
        if body:
            fail(f"{what}: a HEAD answer with a body")
        print("ok  ", what)
        return
    if not content:
        return
    content_type = headers.get("content-type", "").split(";")[0]
    if content_type not in content:
        fail(f"{what}: content type {content_type!r} not documented ({list(content)})")
        return
    schema = content[content_type].get("schema", {})
    if content_type == "application/json":
        try:
            instance = json.loads(body)
        except ValueError as error:
            fail(f"{what}: body is not JSON: {error}")
            return
        validate(instance, schema, what)
    print("ok  ", what)


class Server(chatledger_run.Ledger):
    """The shared starter's `chatledger run` (or `serve`); each answer checked against the document."""

    def request(self, method, target, key=AUDITOR, headers=None, body=None):
        all_headers = dict(headers or {})
        if key:
            all_headers["x-api-key"] = key
        if body is not None:
            all_headers.setdefault("Content-Type", "application/json")
        return super().request(method, target, all_headers, body)

    def expect(self, method, target, expected, key=AUDITOR, headers=None, body=None):
        status, response_headers, body = self.request(method, target, key, headers, body)
        check(method, target, status, response_headers, body, expected)
        return status, response_headers, body


def raw(port, data, until=b"\r\n\r\n"):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(data)
        received = b""
        while until not in received:
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
        return received.decode(errors="replace")


def main():
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as directory:
        keys = chatledger_run.write_keys(pathlib.Path(directory) / "keys.json", [
            {"key": AUDITOR, "devices": ["*"], "role": "auditor"},
            {"key": READER, "devices": ["dev-1"], "role": "reader"},
            {"id": "check-writer", "key": WRITER, "devices": ["dev-1"], "role": "reader", "write": True}])
        server = Server(binary, directory + "/data", keys)
        try:
            produced = server.produce("--simulate", "--devices", "3", "--chats", "8", "--count", "600")
            for partition, offset in produced.items():
                server.expect("GET", f"/api/v1/devices/dev-1/unread?minPosition={partition}:{offset}&wait=20000", 200)
            exercise(server)
            exercise_writes(server)
            plain = Server(binary, directory + "/data", keys, command="serve")
            try:
                chat = "/api/v1/devices/dev-1/chats/" + first_chat(server)
                plain.expect("POST", chat + "/read", 501, key=WRITER)
            finally:
                plain.stop()
        finally:
            server.stop()
    missing = set(DOCUMENT["paths"]) - exercised
    for template in sorted(missing):
        fail(f"{template}: in the document but never exercised")
    print(f"{len(failures)} failures")
    return 1 if failures else 0


def exercise(server):
    device = "/api/v1/devices/dev-1"
    server.expect("GET", "/healthz", 200, key=None)
    server.expect("GET", "/readyz", 200, key=None)
    server.expect("GET", "/metrics", 200, key=None)
    _, headers, body = server.expect("GET", device + "/chats?limit=2", 200)
    cursor = json.loads(body)["nextCursor"]
    if cursor:
        server.expect("GET", device + "/chats?limit=2&cursor=" + cursor, 200)
    for name in ["unread", "archived", "groups", "all"]:
        server.expect("GET", device + "/chats?filter=" + name, 200)
    server.expect("GET", device + "/chats", 304, headers={"If-None-Match": headers["etag"]})
    chats = json.loads(server.request("GET", device + "/chats?limit=500")[2])["chats"]
    chat_id = chats[0]["id"] if chats else "none@c.us"
    server.expect("GET", device + "/chats/" + chat_id, 200)
    server.expect("GET", device + "/chats/nobody%40c.us", 404)
    server.expect("GET", device + "/unread", 200)
    server.expect("GET", device + "/unread", 200, key=READER)
    server.expect("GET", device + "/chats", 401, key=None)
    server.expect("GET", device + "/chats", 401, key="wrong")
    server.expect("GET", "/api/v1/devices/dev-2/chats", 404, key=READER)
    server.expect("GET", device + "/chats?asOf=2030-01-01T00:00:00Z", 403, key=READER)
    server.expect("GET", device + "/events", 403, key=READER)
    server.expect("GET", device + "/chats?asOf=2030-01-01T00:00:00Z", 200)
    server.expect("GET", device + "/chats?asOf=yesterday", 400)
    _, _, body = server.expect("GET", device + "/events?limit=5", 200)
    cursor = json.loads(body)["nextCursor"]
    if cursor:
        server.expect("GET", device + "/events?limit=5&cursor=" + cursor, 200)
    server.expect("GET", device + "/events?limit=0", 400)
    server.expect("GET", device + "/chats?limit=0", 400)
    server.expect("GET", device + "/chats?colour=red", 400)
    server.expect("GET", device + "/chats/x?wait=1&minPosition=0:99999999", 503)
    server.expect("POST", device + "/chats", 405)
    server.expect("GET", device + "/changes?x=1", 400)
    server.expect("GET", device + "/changes", 401, key=None)

    stream = raw(server.port, f"GET {device}/changes HTTP/1.1\r\nHost: x\r\nx-api-key: {AUDITOR}\r\n\r\n".encode(),
                 until=b"\r\n\r\n")  # the head
    head, _, events = stream.partition("\r\n\r\n")
    status = int(head.split(" ")[1])
    headers = dict(line.lower().split(": ", 1) for line in head.split("\r\n")[1:])
    check("GET", device + "/changes", status, headers, "", 200)
    stream = raw(server.port, f"GET {device}/changes HTTP/1.1\r\nHost: x\r\nx-api-key: {AUDITOR}\r\n\r\n".encode(),
                 until=b"}\n\n")
    # Each event (a block of `field: value` lines) against ChangeStreamEvent, its data
    # (contentSchema is an annotation to a JSON Schema validator) against ChangeEvent.
    events = []
    for block in stream.partition("\r\n\r\n")[2].split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\n") if line and not line.startswith(":"))
        if fields:
            events.append(fields)
    if not events:
        fail("changes: no event")
    item_schema = DOCUMENT["paths"]["/api/v1/devices/{deviceId}/changes"]["get"]["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]
    for event in events:
        validate(event, item_schema, "changes event")
        validate(json.loads(event.get("data", "null")), DOCUMENT["components"]["schemas"]["ChangeEvent"], "changes data")

    exercise_devices_status_console(server)

    malformed = raw(server.port, b"GET / HTTP/1.1\nHost: x\n\n")
    if not malformed.startswith("HTTP/1.1 400 "):
        fail(f"malformed HTTP: {malformed[:40]!r}")


def first_chat(server):
    chats = json.loads(server.request("GET", "/api/v1/devices/dev-1/chats?limit=500")[2])["chats"]
    return chats[0]["id"].replace("@", "%40") if chats else "none%40c.us"


def exercise_writes(server):
    """The write routes: every action, wait, idempotency, and the refusals."""
    chat = "/api/v1/devices/dev-1/chats/" + first_chat(server)
    _, headers, body = server.expect("POST", chat + "/read", 202, key=WRITER)
    accepted = json.loads(body)
    if headers.get("x-ledger-position") != accepted["position"]:
        fail(f"write: X-Ledger-Position {headers.get('x-ledger-position')} is not the body's position {accepted}")
    server.expect("GET", f"{chat}?minPosition={accepted['position']}&wait=20000", 200)
    _, _, body = server.expect("POST", chat + "/read?wait=20000", 200, key=WRITER, body='{"upToMessageId":"no-such-message"}')
    server.expect("POST", chat + "/markUnread", 202, key=WRITER, body="{}")
    _, _, body = server.expect("POST", chat + "/markUnread?wait=20000", 200, key=WRITER)
    if not json.loads(body)["markedUnread"]:
        fail(f"write: markUnread applied but the chat says {body}")
    for action, payload in [("archive", '{"archived":false}'), ("pin", '{"pinned":true}'), ("mute", '{"muteUntil":0}')]:
        server.expect("POST", f"{chat}/{action}", 202, key=WRITER, body=payload)
    _, _, first = server.expect("POST", chat + "/pin", 202, key=WRITER, body='{"pinned":false}', headers={"Idempotency-Key": "check-1"})
    _, headers, again = server.expect("POST", chat + "/pin", 202, key=WRITER, body='{"pinned":false}', headers={"Idempotency-Key": "check-1"})
    if json.loads(first)["eventId"] != json.loads(again)["eventId"] or headers.get("idempotent-replayed") != "true":
        fail(f"write: a retry with the same Idempotency-Key is not the same event: {first} {again} {headers}")
    server.expect("POST", chat + "/pin", 422, key=WRITER, body='{"pinned":true}', headers={"Idempotency-Key": "check-1"})
    server.expect("POST", chat + "/archive", 400, key=WRITER, body='{"archived":"yes"}')
    server.expect("POST", chat + "/archive", 400, key=WRITER, body='{"archived":true,"colour":"red"}')
    server.expect("POST", chat + "/archive", 400, key=WRITER)
    server.expect("POST", chat + "/mute", 400, key=WRITER, body='{"muteUntil":-5}')
    server.expect("POST", chat + "/read?wait=-1", 400, key=WRITER)
    server.expect("POST", chat + "/archive", 202, key=WRITER, body='{"archived":true}', headers={"Content-Type": "text/plain"})
    server.expect("POST", chat + "/read", 401, key=None)
    server.expect("POST", chat + "/read", 403, key=READER)
    server.expect("POST", chat + "/read", 403, key=AUDITOR)
    server.expect("POST", "/api/v1/devices/dev-2/chats/x%40c.us/read", 404, key=WRITER)
    server.expect("POST", "/api/v1/devices/dev-1/chats/nobody%40c.us/read", 404, key=WRITER)
    server.expect("GET", chat + "/read", 405, key=WRITER)
    metrics = server.request("GET", "/metrics", key=None)[2]
    for line in ['chatledger_write_rejected_total{reason="wrong_type"} 1', 'chatledger_write_rejected_total{reason="unknown_field"} 1',
                 "chatledger_write_replays_total 1"]:
        if line not in metrics:
            fail(f"metrics: no line {line!r}")


def exercise_devices_status_console(server):
    """The device list (paging, scoping), the status route, the console's three routes."""
    _, _, body = server.expect("GET", "/api/v1/devices", 200)
    every = [device["deviceId"] for device in json.loads(body)["devices"]]
    if sorted(every, key=lambda d: d.encode()) != every or len(every) != 3:
        fail(f"devices: expected dev-1..dev-3 in byte order, got {every}")
    paged, cursor = [], None
    for _ in range(5):
        _, _, body = server.expect("GET", "/api/v1/devices?limit=2" + (f"&cursor={cursor}" if cursor else ""), 200)
        page = json.loads(body)
        paged += [device["deviceId"] for device in page["devices"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    if paged != every:
        fail(f"devices: paging by 2 gave {paged}, the whole list is {every}")
    _, _, body = server.expect("GET", "/api/v1/devices", 200, key=READER)
    if [device["deviceId"] for device in json.loads(body)["devices"]] != ["dev-1"]:
        fail(f"devices: the reader for dev-1 sees {body}")
    unread = json.loads(server.request("GET", "/api/v1/devices/dev-1/unread")[2])
    summary = next(device for device in json.loads(server.request("GET", "/api/v1/devices")[2])["devices"]
                   if device["deviceId"] == "dev-1")
    if (summary["unreadChats"], summary["unreadMessages"]) != (unread["unreadChats"], unread["unreadMessages"]):
        fail(f"devices: dev-1's summary {summary} disagrees with /unread {unread}")
    server.expect("GET", "/api/v1/devices?limit=0", 400)
    server.expect("GET", "/api/v1/devices?cursor=forged", 400)
    server.expect("GET", "/api/v1/devices", 401, key=None)

    _, _, body = server.expect("GET", "/api/v1/status", 200, key=READER)
    status = json.loads(body)
    if not status["ready"] or status["source"] != "kafka" or not status["partitions"]:
        fail(f"status: expected ready, kafka, partitions: {status}")
    server.expect("GET", "/api/v1/status?verbose=1", 400)
    server.expect("GET", "/api/v1/status", 401, key="wrong")

    for path in ["/", "/console.js", "/console.css"]:
        _, headers, _ = server.expect("GET", path, 200, key=None)
        server.expect("GET", path, 304, key=None, headers={"If-None-Match": headers["etag"]})
    server.expect("HEAD", "/", 200, key=None)
    server.expect("HEAD", "/api/v1/devices/dev-1/chats", 200)
    server.expect("DELETE", "/api/v1/devices/dev-1/chats", 405)
    server.expect("POST", "/api/v1/nothing", 404)


if __name__ == "__main__":
    sys.exit(main())
