"""Starts `chatledger run` (or `serve`) as a child process for the Python checks and reads
the lines it prints once listening: `bootstrap=HOST:PORT` (the embedded broker, `run` only)
and `url=http://HOST:PORT`."""
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
