#!/usr/bin/env bash
# ChatLedger on a fresh Debian machine.
#
#   deploy/local.sh run    install what is missing, build release, start ChatLedger with demo traffic
#   deploy/local.sh test   install what is missing, build, run the whole test suite
#
# Needs a Swift 6 toolchain (swift.org; /opt/swift is found automatically) and apt-get
# for librdkafka-dev, pkg-config and kcat (as root, or with sudo).
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
  for package in librdkafka-dev pkg-config kcat; do
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

# Prints a python interpreter that can import jsonschema, installing it if needed.
python_with_jsonschema() {
  if python3 -c 'import jsonschema' 2>/dev/null; then echo python3; return; fi
  log "installing Python jsonschema"
  if python3 -m pip install --quiet jsonschema >/dev/null 2>&1 ||
     python3 -m pip install --quiet --break-system-packages jsonschema >/dev/null 2>&1; then
    echo python3; return
  fi
  apt_install python3-jsonschema
  echo /usr/bin/python3
}

run_tests() {
  install_system_packages
  find_swift
  local python
  python=$(python_with_jsonschema)
  log "checking schema examples against schemas/event.v1.schema.json"
  "$python" Tests/SchemaChecks/check_examples.py >/dev/null || "$python" Tests/SchemaChecks/check_examples.py
  log "building (debug, with tests)"
  swift build --build-tests
  log "running the test suite"
  swift test --skip-build
}

run_demo() {
  install_system_packages
  find_swift
  log "building release"
  swift build -c release
  local chatledger=.build/release/chatledger data=./data/demo
  # `chatledger run` (one process with the HTTP query worker) is not built yet (issue #6);
  # until it is, this runs the same parts as separate processes: the embedded broker,
  # ingest into ./data/demo, and simulated bridge traffic; then shows what ingest made.
  coproc BROKER { exec "$chatledger" broker --partitions 8; }
  demo_broker=$BROKER_PID
  demo_ingest=""
  trap 'kill "${demo_broker:-}" ${demo_ingest:+"$demo_ingest"} 2>/dev/null || true' EXIT
  local first_line="" bootstrap=""
  # The broker prints its address as its first line once it is ready: block on that line.
  read -r first_line <&"${BROKER[0]}" || true
  bootstrap=$(sed -n 's/^bootstrap=\([^ ]*\).*/\1/p' <<<"$first_line")
  [ -n "$bootstrap" ] || { log "the embedded broker did not start"; exit 1; }
  log "embedded broker at $bootstrap"

  rm -rf "$data"
  "$chatledger" ingest --brokers "$bootstrap" --data "$data" --group "demo-$$" 2>"$data.ingest.log" &
  demo_ingest=$!
  log "ingest running (log: $data.ingest.log); publishing 2000 simulated device events"
  "$chatledger" produce --brokers "$bootstrap" --simulate --count 2000 --devices 10 --chats 50 >/dev/null
  log "waiting for ingest to log all 2000 records"
  local records=0
  for _ in $(seq 120); do
    records=$({ "$chatledger" verify --data "$data" --json 2>/dev/null || true; } | sed -n 's/.*"records":\([0-9]*\),"seconds".*/\1/p')
    [ "${records:-0}" -ge 2000 ] && break
    sleep 0.5
  done
  "$chatledger" verify --data "$data" | tail -n 3 >&2
  log "dev-1's chat list as the API will serve it (first 3 chats):"
  "$chatledger" replay --data "$data" --device dev-1 --limit 3 >&2
  cat >&2 <<MSG

Running: a Kafka-protocol broker (librdkafka's mock cluster, in memory) at $bootstrap and
'chatledger ingest' writing the event log and projection checkpoints to $data.

Try, in another terminal:
  $chatledger produce --brokers $bootstrap --simulate --count 500 --rate 50 --seed 2
  $chatledger replay --data $data --device dev-3 --limit 5
  $chatledger export --data $data --device dev-3 | head -3
  $chatledger verify --data $data
  kcat -b $bootstrap -C -t wa.device-events -e -f '%p:%o %k %s\n' | head

Ctrl-C stops ingest (it syncs and checkpoints) and the broker.
MSG
  wait "$demo_ingest"
}

case "${1:-}" in
  run) run_demo ;;
  test) run_tests ;;
  *) echo "usage: deploy/local.sh run|test" >&2; exit 64 ;;
esac
