#!/usr/bin/env python3
"""Drives schemathesis over every operation of schemas/openapi.yaml against a live run.

Usage: run_schemathesis.py PATH/TO/chatledger PATH/TO/schemathesis [EXAMPLES]

Starts `chatledger run` (embedded broker) with the same keys as check_openapi.py,
produces simulated traffic and waits until it is applied, then runs
`schemathesis run --checks all` with the auditor's key over every operation, EXAMPLES
test cases per operation (default 40) and a fixed seed, so a CI run is reproducible and
bounded. `positive_data_acceptance` and `not_a_server_error` are replaced by the versions in
schemathesis_hooks.py, which also accept the refusals each operation documents in
`x-state-refusals`. Exits with schemathesis's status (0: no failures).
"""
import os
import pathlib
import subprocess
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "Support"))
import chatledger_run  # noqa: E402

SCHEMAS = pathlib.Path(__file__).resolve().parents[2] / "schemas"
AUDITOR, READER, WRITER = "check-auditor", "check-reader", "check-writer"


def main():
    # Absolute: schemathesis runs in the temporary directory (where it leaves its own files).
    binary, schemathesis = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    examples = sys.argv[3] if len(sys.argv) > 3 else "40"
    with tempfile.TemporaryDirectory() as directory:
        # The same keys as check_openapi.py's.
        keys = chatledger_run.write_keys(pathlib.Path(directory) / "keys.json", [
            {"id": "check-auditor", "key": AUDITOR, "devices": ["*"], "role": "auditor", "write": True},
            {"key": READER, "devices": ["dev-1"], "role": "reader"},
            {"id": "check-writer", "key": WRITER, "devices": ["dev-1"], "role": "reader", "write": True}])
        server = chatledger_run.Ledger(binary, directory + "/data", keys)
        try:
            server.await_applied(server.produce("--simulate", "--devices", "3", "--chats", "8", "--count", "300"), AUDITOR)
            command = [
                schemathesis, "--config-file", str(pathlib.Path(__file__).with_name("schemathesis.toml")),
                "run", str(SCHEMAS / "openapi.yaml"),
                "--url", f"http://127.0.0.1:{server.port}",
                "--checks", "all",
                # Replaced by schemathesis_hooks.py's versions (with the documented
                # `x-state-refusals`), which `all` includes.
                "--exclude-checks", "positive_data_acceptance,not_a_server_error",
                "--header", f"x-api-key: {AUDITOR}",
                "--max-examples", examples,
                "--seed", "18",
                # One worker: Hypothesis describes its strategies with ast.parse, which
                # CPython 3.11 does not do safely from two threads at once.
                "--workers", "1",
                "--request-timeout", "35",  # above the longest `wait` (30 s)
                # A request may be held for up to its `wait` (30 s), as documented.
                "--max-response-time", "35",
                "--suppress-health-check", "all",
                "--no-color",
            ]
            hooks = str(pathlib.Path(__file__).resolve().with_name("schemathesis_hooks.py"))
            return subprocess.run(command, cwd=directory, env={**os.environ, "SCHEMATHESIS_HOOKS": hooks}).returncode
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
