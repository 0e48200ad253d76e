"""Starts `chatledger run` (or `serve`) as a child process for the Python checks, the one
starter they share (check_openapi.py, run_schemathesis.py, check_console.py, check_tls.py).

A check imports it by path, so it works from a fresh clone whatever the working directory:

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Support"))
    import chatledger_run

`start` reads the lines the child prints once listening: `bootstrap=HOST:PORT` (the
embedded broker, `run` only) and `url=http://HOST:PORT`. `Ledger` is a started instance
on a free loopback port with a keys file, which produces with `chatledger produce` and
waits until what it produced is applied."""
import http.client
import json
import pathlib
import subprocess


class Started:
    def __init__(self, process, brokers, url):
        self.process, self.brokers, self.url = process, brokers, url
        self.port = int(url.rsplit(":", 1)[1].rstrip("/"))


def start(binary, arguments, stderr=subprocess.DEVNULL):
    """Runs `binary arguments…` and returns once it printed its URL; exits if it ends before."""
    process = subprocess.Popen([binary, *arguments], stdout=subprocess.PIPE, stderr=stderr, text=True)
    brokers, url = None, None
    while url is None:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"chatledger {arguments[0]} ended before printing its URL")
        if line.startswith("bootstrap="):
            brokers = line.strip().split("=", 1)[1]
        if line.startswith("url="):
            url = line.strip().split("=", 1)[1]
    return Started(process, brokers, url)


def write_keys(path, keys):
    """Writes a keys file (`--keys`) holding `keys` (dicts: key, devices, role, …); returns its path."""
    path = pathlib.Path(path)
    path.write_text(json.dumps({"keys": keys}))
    return str(path)


class Ledger:
    """`chatledger COMMAND --http 127.0.0.1:0 --data DATA --keys KEYS` (`run`: with the
    embedded broker and `partitions` partitions), started and listening."""

    def __init__(self, binary, data, keys, command="run", partitions=2, stderr=subprocess.DEVNULL):
        arguments = [command, "--http", "127.0.0.1:0", "--data", str(data), "--keys", str(keys)]
        if command == "run":
            arguments += ["--partitions", str(partitions)]
        started = start(binary, arguments, stderr=stderr)
        self.binary = binary
        self.process, self.brokers, self.url, self.port = started.process, started.brokers, started.url, started.port

    def produce(self, *arguments):
        """`chatledger produce --brokers BROKERS arguments…` (`--file F`, `--simulate …`);
        returns the last offset it wrote per partition, {"P": O}."""
        produced = subprocess.run([self.binary, "produce", "--brokers", self.brokers, *arguments],
                                  check=True, capture_output=True, text=True)
        return json.loads(produced.stdout)["lastOffsets"]

    def request(self, method, target, headers=None, body=None):
        """One HTTP request; returns (status, headers with lower-case names, body text)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, target, body=body, headers=dict(headers or {}))
            response = connection.getresponse()
            text = response.read().decode()
            return response.status, {name.lower(): value for name, value in response.getheaders()}, text
        finally:
            connection.close()

    def await_applied(self, last_offsets, key, device="dev-1"):
        """Waits (up to 20 s per partition, as the API's `wait`) until every position in
        `last_offsets` is applied; exits if one is not."""
        for partition, offset in last_offsets.items():
            status, _, _ = self.request(
                "GET", f"/api/v1/devices/{device}/unread?minPosition={partition}:{offset}&wait=20000", {"x-api-key": key})
            if status != 200:
                raise SystemExit(f"position {partition}:{offset} not applied: {status}")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
