#!/usr/bin/env python3
"""Runs the shipped TLS termination (deploy/tls/nginx.conf, deploy/tls/Caddyfile) in front
of a real `chatledger run` and checks what clients rely on passes through it unchanged.

Usage: check_tls.py PATH/TO/chatledger

For each proxy found on this machine (nginx, caddy; one missing is reported and skipped,
none at all fails), with a certificate from a CA this script makes:
- the answer through TLS equals the worker's own: status, body, ETag, X-Ledger-Position;
- If-None-Match with that ETag answers 304; a missing key answers 401 with its JSON error;
- `minPosition=P:O&wait=MS` for an offset just produced answers 200 with that event applied;
- a write (POST …/read with Idempotency-Key) answers 202 with X-Ledger-Position;
- a Server-Sent Events stream opened through the proxy receives the version change of a
  message produced after it opened (a buffering proxy holds it back: that fails here).
The shipped files are used as they are; only addresses, ports and certificate paths are
replaced (each replacement is checked to have matched). Exits 1 on any failure.
"""
import http.client
import json
import pathlib
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests" / "Support"))
import chatledger_run  # noqa: E402
AUDITOR = "tls-check-auditor-key"
failures = []


def fail(message):
    failures.append(message)
    print("FAIL", message)


def ok(message):
    print("ok  ", message)


def expect(condition, message):
    (ok if condition else fail)(message)
    return condition


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def replace(text, pattern, replacement, what):
    """re.sub that insists on matching: a shipped file that changed shape must not pass unnoticed."""
    result, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count == 0:
        raise SystemExit(f"check_tls: {what}: pattern {pattern!r} no longer matches the shipped file")
    return result


def wait_for_port(port, process, what, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} did not listen on {port} within {timeout} s")


# MARK: - certificates


def make_certificates(directory):
    """A CA and a server certificate for 127.0.0.1 and localhost, signed by it."""
    d = pathlib.Path(directory)

    def openssl(*arguments):
        subprocess.run(["openssl", *arguments], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ChatLedger check CA",
            "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", str(d / "san.ext"), "-out", str(d / "server.pem"))
    return d / "ca.pem", d / "server.pem", d / "server.key"


# MARK: - chatledger


class Ledger(chatledger_run.Ledger):
    """The shared starter's `chatledger run`, with a writing auditor key, its log in run.log."""

    def __init__(self, binary, directory):
        self.directory = pathlib.Path(directory)
        keys = chatledger_run.write_keys(self.directory / "keys.json", [
            {"key": AUDITOR, "devices": ["*"], "role": "auditor", "id": "tls-check", "write": True}])
        super().__init__(binary, self.directory / "data", keys, stderr=open(self.directory / "run.log", "w"))
        self.produced = 0

    def produce(self, device, chat, count):
        """Publishes `count` incoming messages; returns the position 'P:O' of the last one."""
        events = []
        for _ in range(count):
            self.produced += 1
            events.append({"schemaVersion": 1, "eventId": f"tls-{self.produced}", "deviceId": device,
                           "type": "message.created", "occurredAt": 1_764_000_000_000 + self.produced,
                           "chatId": chat, "data": {"messageId": f"M{self.produced}", "fromMe": False,
                                                    "kind": "text", "preview": f"hello {self.produced}"}})
        path = self.directory / f"events-{self.produced}.ndjson"
        path.write_text("".join(json.dumps(event) + "\n" for event in events))
        (partition, offset), = super().produce("--file", str(path)).items()
        return f"{partition}:{offset}"


def request(connection, method, path, headers=None, body=None):
    connection.request(method, path, body=body, headers={"x-api-key": AUDITOR, **(headers or {})})
    response = connection.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


# MARK: - proxies


def start_nginx(work, ledger, certificate, key):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not pathlib.Path(nginx).exists():
        return None
    port = free_port()
    site = (ROOT / "deploy" / "tls" / "nginx.conf").read_text()
    site = replace(site, r"server 127\.0\.0\.1:8080;", f"server 127.0.0.1:{ledger.port};", "upstream")
    site = replace(site, r"listen 443 ssl http2;", f"listen 127.0.0.1:{port} ssl http2;", "TLS listener")
    site = replace(site, r"^\s*listen \[::\]:443 ssl http2;\n", "", "IPv6 TLS listener")
    site = replace(site, r"ssl_certificate\s+\S+;", f"ssl_certificate {certificate};", "certificate")
    site = replace(site, r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {key};", "certificate key")
    site = replace(site, r"# Plain HTTP only redirects\.\nserver \{[^}]*\}\n", "", "redirect server")
    prefix = work / "nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "site.conf").write_text(site)
    (prefix / "nginx.conf").write_text(
        f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\nerror_log {prefix}/logs/error.log;\n"
        f"events {{ worker_connections 256; }}\n"
        f"http {{\n  access_log {prefix}/logs/access.log;\n"
        f"  client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;\n"
        f"  fastcgi_temp_path {prefix}/fastcgi; uwsgi_temp_path {prefix}/uwsgi; scgi_temp_path {prefix}/scgi;\n"
        f"  include {prefix}/site.conf;\n}}\n")
    process = subprocess.Popen([nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                               stderr=open(prefix / "logs" / "stderr.log", "w"))
    wait_for_port(port, process, "nginx")
    return process, port


def start_caddy(work, ledger, certificate, key):
    caddy = shutil.which("caddy")
    if caddy is None:
        return None
    port = free_port()
    site = (ROOT / "deploy" / "tls" / "Caddyfile").read_text()
    site = replace(site, r"^chatledger\.example\.com \{",
                   f"{{\n\tadmin off\n\tauto_https off\n}}\n\nhttps://127.0.0.1:{port} {{\n\ttls {certificate} {key}",
                   "site address")
    site = replace(site, r"reverse_proxy 127\.0\.0\.1:8080", f"reverse_proxy 127.0.0.1:{ledger.port}", "upstream")
    directory = work / "caddy"
    directory.mkdir()
    (directory / "Caddyfile").write_text(site)
    environment = {"HOME": str(directory), "XDG_DATA_HOME": str(directory), "XDG_CONFIG_HOME": str(directory),
                   "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen([caddy, "run", "--config", str(directory / "Caddyfile"), "--adapter", "caddyfile"],
                               stdout=open(directory / "caddy.log", "w"), stderr=subprocess.STDOUT,
                               env=environment)
    wait_for_port(port, process, "caddy")
    return process, port


# MARK: - checks


def check_proxy(name, port, ledger, context):
    device, chat = f"dev-{name}", "491700000001@c.us"
    proxied = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    direct = http.client.HTTPConnection("127.0.0.1", ledger.port, timeout=30)

    position = ledger.produce(device, chat, 3)
    path = f"/api/v1/devices/{device}/chats/{chat}?minPosition={position}&wait=20000"
    status, headers, body = request(proxied, "GET", path)
    expect(status == 200 and json.loads(body).get("unreadCount") == 3,
           f"{name}: minPosition+wait through TLS answers 200 with the 3 messages applied ({status})")
    d_status, d_headers, d_body = request(direct, "GET", f"/api/v1/devices/{device}/chats/{chat}")
    expect((status, body) == (d_status, d_body), f"{name}: the body through TLS is the worker's own, byte for byte")
    for header in ("etag", "x-ledger-position"):
        expect(header in headers and headers.get(header) == d_headers.get(header),
               f"{name}: {header} passes unchanged ({headers.get(header)!r} vs {d_headers.get(header)!r})")

    status, _, body = request(proxied, "GET", f"/api/v1/devices/{device}/chats/{chat}",
                              {"If-None-Match": headers.get("etag", "")})
    expect(status == 304 and body == b"", f"{name}: If-None-Match with the ETag answers 304 ({status})")

    proxied.request("GET", f"/api/v1/devices/{device}/chats")
    response = proxied.getresponse()
    body = response.read()
    expect(response.status == 401 and b'"error"' in body, f"{name}: a missing key answers 401 with its JSON error")

    status, headers, _ = request(proxied, "POST", f"/api/v1/devices/{device}/chats/{chat}/read",
                                 {"Idempotency-Key": f"tls-check-{name}", "Content-Type": "application/json"}, b"{}")
    expect(status == 202 and "x-ledger-position" in headers,
           f"{name}: a write with Idempotency-Key answers 202 with X-Ledger-Position ({status})")
    position = headers.get("x-ledger-position", "")
    status, _, body = request(proxied, "GET", f"/api/v1/devices/{device}/chats/{chat}?minPosition={position}&wait=20000")
    expect(status == 200 and json.loads(body).get("unreadCount") == 0,
           f"{name}: the write is applied and visible through TLS")
    proxied.close()
    direct.close()
    check_events_stream(name, port, ledger, context, device, chat)


def check_events_stream(name, port, ledger, context, device, chat):
    """A change produced after the stream opened arrives through the proxy while the stream stays open."""
    stream = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=20)
    stream.request("GET", f"/api/v1/devices/{device}/changes", headers={"x-api-key": AUDITOR})
    try:
        response = stream.getresponse()
    except (socket.timeout, TimeoutError):
        fail(f"{name}: the change stream's head did not arrive through the proxy (held in a buffer?)")
        return
    if not expect(response.status == 200 and "text/event-stream" in (response.getheader("content-type") or ""),
                  f"{name}: the change stream opens through TLS ({response.status})"):
        return
    current, seen, position = None, None, None
    try:
        # The stream starts with the device's current version; read it, then produce.
        for line in iter(response.fp.readline, b""):
            if line.startswith(b"id: "):
                current = int(line[4:])
                break
        position = ledger.produce(device, chat, 1)
        for line in iter(response.fp.readline, b""):
            if line.startswith(b"id: ") and current is not None and int(line[4:]) > current:
                seen = int(line[4:])
                break
    except (socket.timeout, TimeoutError):
        pass  # held back by the proxy: reported below
    expect(seen is not None,
           f"{name}: the stream's first event and a message produced after it opened ({position}) arrive through "
           f"the proxy as they happen (version {current} -> {seen})")
    stream.close()


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    binary = sys.argv[1]
    if shutil.which("openssl") is None:
        raise SystemExit("check_tls: openssl is needed to make the test certificates")
    with tempfile.TemporaryDirectory(prefix="chatledger-tls-") as directory:
        work = pathlib.Path(directory)
        ca, certificate, key = make_certificates(work)
        context = ssl.create_default_context(cafile=str(ca))
        ledger = Ledger(binary, directory)
        proxies = []
        try:
            for name, start in (("nginx", start_nginx), ("caddy", start_caddy)):
                started = start(work, ledger, certificate, key)
                if started is None:
                    print(f"skip {name}: not installed")
                    continue
                process, port = started
                proxies.append(process)
                check_proxy(name, port, ledger, context)
            expect(bool(proxies), "at least one of nginx and caddy ran the shipped configuration")
        finally:
            for process in proxies:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            ledger.stop()
    print(f"{'FAILED' if failures else 'passed'}: TLS termination, {len(failures)} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
