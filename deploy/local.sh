#!/usr/bin/env bash
# ChatLedger on a fresh Debian machine.
#
#   deploy/local.sh run    install what is missing, build release, start ChatLedger with demo traffic
#   deploy/local.sh test   install what is missing, build, run the whole test suite, then
#                          check live API responses against schemas/openapi.yaml (our checker,
#                          then schemathesis from PyPI over every operation), drive the
#                          console in headless Chromium (screenshots in .build/console-screenshots)
#                          and check deploy/ against the binary (see Tests/SchemaChecks,
#                          Tests/ConsoleChecks, Tests/DeployChecks)
#
# Needs a Swift 6 toolchain (swift.org; /opt/swift is found automatically) and apt-get
# for librdkafka-dev, pkg-config and kcat, and for `test` chromium (as root, or with sudo).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'local.sh: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    log "need root (or sudo) to run: $*"; exit 1
  fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_system_packages() {
  local missing=()
  local packages=(librdkafka-dev pkg-config kcat)
  # The test suite also checks deploy/ (systemd-analyze verify, shellcheck) and drives the
  # console in Debian's headless Chromium (with a font to render its text), and runs the
  # shipped TLS termination (deploy/tls/) in nginx and Caddy with a certificate from openssl,
  # puts the mock Kafka cluster behind stunnel for the Kafka TLS tests, and runs the bridge
  # publishers of deploy/bridges/ with Node.js.
  [ "${1:-}" = test ] && packages+=(systemd shellcheck chromium fonts-dejavu-core nginx-light caddy openssl stunnel4 nodejs)
  for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
}

find_swift() {
  if ! command -v swift >/dev/null 2>&1 && [ -x /opt/swift/usr/bin/swift ]; then
    export PATH="/opt/swift/usr/bin:$PATH"
  fi
  command -v swift >/dev/null 2>&1 || { log "no Swift toolchain found: install Swift 6 from https://swift.org/install"; exit 1; }
}

# Prints a python interpreter that can import jsonschema and yaml, installing them if needed.
python_with_checks() {
  if python3 -c 'import jsonschema, yaml' 2>/dev/null; then echo python3; return; fi
  log "installing Python jsonschema and PyYAML"
  if python3 -m pip install --quiet jsonschema pyyaml >/dev/null 2>&1 ||
     python3 -m pip install --quiet --break-system-packages jsonschema pyyaml >/dev/null 2>&1; then
    echo python3; return
  fi
  apt_install python3-jsonschema python3-yaml
  echo /usr/bin/python3
}

# Prints the path of a schemathesis (from PyPI) in a virtualenv under .build, creating it
# if needed; schemathesis pins many libraries, so it is kept apart from the system's Python.
# Pinned: the run gates the tests, and schemathesis_hooks.py imports two of its checks.
SCHEMATHESIS_VERSION=4.32.5
schemathesis_binary() {
  local venv=.build/schemathesis-venv
  if [ ! -x "$venv/bin/schemathesis" ]; then
    log "installing schemathesis (PyPI) into $venv"
    # Without PyPI (offline) the step is skipped with a message, never the end of the test run.
    if ! { python3 -m venv "$venv" >/dev/null 2>&1 || { apt_install python3-venv && python3 -m venv "$venv"; }; } ||
       ! "$venv/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION" >/dev/null 2>&1; then
      log "SKIPPED: could not install schemathesis from PyPI, so schemas/openapi.yaml was not fuzzed against a live run"
      return 0
    fi
  fi
  echo "$venv/bin/schemathesis"
}

run_tests() {
  install_system_packages test
  find_swift
  local python
  python=$(python_with_checks)
  log "checking schema examples against schemas/event.v1.schema.json"
  "$python" Tests/SchemaChecks/check_examples.py >/dev/null || "$python" Tests/SchemaChecks/check_examples.py
  log "building (debug, with tests)"
  swift build --build-tests
  log "running the test suite"
  # Without Swift's backtracer: a child process that crashed under a test once started it,
  # and the orphaned backtracer held the child's pipes open, so the test reading them (and
  # the whole run) waited until it was killed 14 minutes later. A crash now fails its test
  # at once; the runtime's "Fatal error" line still says what failed.
  SWIFT_BACKTRACE=enable=no swift test --skip-build
  log "checking live API responses against schemas/openapi.yaml"
  "$python" Tests/SchemaChecks/check_openapi.py .build/debug/chatledger >/dev/null ||
    "$python" Tests/SchemaChecks/check_openapi.py .build/debug/chatledger
  log "schemathesis over every operation of schemas/openapi.yaml against a live chatledger run (--checks all)"
  local schemathesis
  schemathesis=$(schemathesis_binary)
  # Run once, with a fixed seed and a bounded number of examples; any finding fails the run
  # (the refusals that depend on the server's state are documented per operation in
  # openapi.yaml's x-state-refusals, which Tests/SchemaChecks/schemathesis_hooks.py knows).
  if [ -n "$schemathesis" ] && ! python3 Tests/SchemaChecks/run_schemathesis.py .build/debug/chatledger "$schemathesis" 20 \
      >.build/schemathesis.log 2>&1; then
    sed -n '/FAILURES/,$p' .build/schemathesis.log
    log "schemathesis found requests the server answers against schemas/openapi.yaml (the report is in .build/schemathesis.log)"
    exit 1
  fi
  log "driving the console in headless Chromium against chatledger run (screenshots in .build/console-screenshots)"
  # Run once (a second run could hide a flaky first one); its report is printed if it fails.
  if ! python3 Tests/ConsoleChecks/check_console.py .build/debug/chatledger .build/console-screenshots \
      >.build/console-check.log 2>&1; then
    cat .build/console-check.log
    exit 1
  fi
  log "checking deploy/ against chatledger --help, systemd-analyze and shellcheck"
  "$python" Tests/DeployChecks/check_deploy.py .build/debug/chatledger >/dev/null ||
    "$python" Tests/DeployChecks/check_deploy.py .build/debug/chatledger
  log "running deploy/tls/ (nginx, Caddy) in front of chatledger run"
  if ! python3 Tests/DeployChecks/check_tls.py .build/debug/chatledger >.build/tls-check.log 2>&1; then
    cat .build/tls-check.log
    exit 1
  fi
}

run_demo() {
  install_system_packages
  find_swift
  log "building release"
  swift build -c release
  log "starting chatledger run --demo (embedded broker, ingest, projections, HTTP API on 127.0.0.1:8080); Ctrl-C stops it"
  # The embedded broker keeps nothing between runs, so neither does the demo's log.
  rm -rf ./data/demo
  exec .build/release/chatledger run --demo --data ./data/demo
}

case "${1:-}" in
  run) run_demo ;;
  test) run_tests ;;
  *) echo "usage: deploy/local.sh run|test" >&2; exit 64 ;;
esac
