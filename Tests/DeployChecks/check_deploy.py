#!/usr/bin/env python3
"""Checks deploy/ against the chatledger binary it deploys.

Usage: check_deploy.py PATH/TO/chatledger [DEPLOY_DIR]

- every YAML file under deploy/ parses (all documents);
- every chatledger invocation in the Dockerfile, compose.yaml, k8s/ and systemd/ uses a
  command and only flags that `chatledger COMMAND --help` documents, gives a value to
  each flag that takes one, and includes the required ones; the --help text is parsed
  here, so the files cannot drift from the binary;
- ports and paths agree: each --http port is the one the container exposes and its
  health checks and probes hit, probe paths are routes of schemas/openapi.yaml, --data
  is a mounted volume (or the unit's StateDirectory), --keys lives on a mounted secret or
  file; k8s instances use static membership (group.instance.id from the pod name);
- systemd units pass `systemd-analyze verify` without a single warning (ExecStart and
  EnvironmentFile pointed at this checkout for the check);
- Kafka credentials: every invocation that talks to Kafka (--brokers) gets its librdkafka
  properties from a file (CHATLEDGER_KAFKA_CONFIG_FILE or --kafka-config-file) that is a
  compose secret, a mounted k8s Secret or a systemd credential; no secret property
  (sasl.password, sasl.jaas.config, ssl.*password, …) appears in any argv, ConfigMap or env
  file; compose's credential files agree with the broker's users;
- the k8s Ingress terminates TLS for the query Service without buffering Server-Sent Events
  and with a read timeout above the API's longest wait; kustomization lists every manifest;
- cluster mode: every ingest advertises the URL of a serve that reads its data volume
  and advertises the same URL, with that serve's --http port (compose services; the two
  containers of a k8s pod);
- shell scripts pass shellcheck.
Prints one line per finding and a summary; exits 1 on any failure.
"""
import json
import pathlib
import re
import shlex
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
failures = []
checked = []


def fail(message):
    failures.append(message)
    print("FAIL", message)


def ok(message):
    checked.append(message)
    print("ok  ", message)


# --- what the binary documents ---

def documented(binary):
    top = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    commands = {}
    in_commands = False
    for line in top.splitlines():
        if line.startswith("Commands:"):
            in_commands = True
            continue
        match = re.match(r"^  ([a-z]+)\s{2,}", line)
        if in_commands and match:
            commands[match.group(1)] = None
    for command in commands:
        text = subprocess.run([binary, command, "--help"], capture_output=True, text=True).stdout
        options = {}
        for line in text.splitlines():
            match = re.match(r"^  --([a-z0-9-]+)(?: ([A-Z][A-Z0-9=.,:]*))?\s{2,}(.*)$", line)
            if match:
                options[match.group(1)] = {"value": match.group(2), "required": "(required)" in match.group(3)}
        commands[command] = options
    return commands


def openapi_paths():
    document = yaml.safe_load((ROOT / "schemas" / "openapi.yaml").read_text())
    return set(document["paths"])


# --- invocations ---

def check_invocation(where, arguments, commands):
    """Checks one argument vector (without the binary); returns {flag: value}."""
    if not arguments or arguments[0] not in commands:
        fail(f"{where}: unknown command {arguments[:1]}")
        return {}
    command, options = arguments[0], commands[arguments[0]]
    values = {}
    index = 1
    while index < len(arguments):
        token = arguments[index]
        if not token.startswith("--"):
            fail(f"{where}: stray argument {token!r}")
            index += 1
            continue
        name = token[2:]
        if name not in options:
            fail(f"{where}: `chatledger {command} --help` does not document --{name}")
            index += 1
            continue
        if options[name]["value"]:
            if index + 1 >= len(arguments) or arguments[index + 1].startswith("--"):
                fail(f"{where}: --{name} needs a value")
                index += 1
                continue
            values[name] = arguments[index + 1]
            index += 2
        else:
            values[name] = True
            index += 1
    for name, option in options.items():
        if option["required"] and name not in values:
            fail(f"{where}: required --{name} missing")
    ok(f"{where}: chatledger {' '.join(arguments)}")
    return values


SECRET_PROPERTY = re.compile(r"(sasl\.password|sasl\.jaas\.config|ssl\.[a-z.]*password|"
                             r"sasl\.oauthbearer\.client\.secret|ssl\.key\.pem)\s*=", re.I)


def properties(text):
    """librdkafka / Java properties: key=value lines, # comments."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def check_no_secret_in(where, texts):
    for text in texts:
        if SECRET_PROPERTY.search(str(text)):
            fail(f"{where}: a secret Kafka property is written in the clear: {str(text)[:60]}…")
            return
    ok(f"{where}: no secret Kafka property in argv or environment")


def port_of(address):
    return int(str(address).rsplit(":", 1)[1])


def url_port_and_path(text):
    match = re.search(r"http://[^:/]+:(\d+)(/[^ \"']*)", text)
    return (int(match.group(1)), match.group(2)) if match else (None, None)


def check_yaml_parses(deploy):
    for path in sorted(deploy.rglob("*.y*ml")):
        try:
            documents = [document for document in yaml.safe_load_all(path.read_text()) if document is not None]
            ok(f"{path.relative_to(deploy.parent)} parses ({len(documents)} document(s))")
        except yaml.YAMLError as error:
            fail(f"{path.relative_to(deploy.parent)}: {error}")


def check_dockerfile(deploy, commands, routes):
    text = (deploy / "Dockerfile").read_text()
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M).group(1))
    command = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    if not entrypoint[0].endswith("/chatledger"):
        fail(f"Dockerfile: ENTRYPOINT is {entrypoint}")
    values = check_invocation("Dockerfile CMD", command, commands)
    port, path = url_port_and_path(re.search(r"HEALTHCHECK.*\n?.*CMD (.*)$", text, re.M).group(1))
    exposed = {int(port) for line in re.findall(r"^EXPOSE (.*)$", text, re.M) for port in line.split()}
    if port != port_of(values.get("http", ":0")) or path not in routes:
        fail(f"Dockerfile: HEALTHCHECK hits :{port}{path}, the default command serves --http {values.get('http')}")
    if port not in exposed:
        fail(f"Dockerfile: port {port} is not EXPOSEd ({exposed})")
    if values.get("data") != "/data" or 'VOLUME ["/data"]' not in text:
        fail("Dockerfile: --data must be the /data volume")
    if not re.search(r"^USER (?!root)", text, re.M):
        fail("Dockerfile: runs as root")


def check_compose(deploy, commands, routes):
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    checked_services = 0
    for name, service in compose["services"].items():
        image = service.get("image", "")
        if not (image.startswith("chatledger") or "build" in service):
            continue
        checked_services += 1
        where = f"compose.yaml service {name}"
        values = check_invocation(where, service["command"], commands)
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service.get("volumes", [])}
        if "data" in values and values["data"] not in mounts:
            fail(f"{where}: --data {values['data']} is not a mounted volume ({list(mounts)})")
        if "keys" in values:
            source = mounts.get(values["keys"])
            if source is None or not (deploy / source).is_file():
                fail(f"{where}: --keys {values['keys']} is not mounted from a file in deploy/")
            else:
                json.loads((deploy / source).read_text())
        if "http" in values:
            port = port_of(values["http"])
            published = [int(str(mapping).split(":")[-1]) for mapping in service.get("ports", [])]
            if port not in published:
                fail(f"{where}: --http port {port} is not published ({published})")
            check_port, path = url_port_and_path(" ".join(service.get("healthcheck", {}).get("test", [])))
            if check_port != port or path not in routes:
                fail(f"{where}: healthcheck hits :{check_port}{path}, --http is {values['http']}")
        brokers = values.get("brokers")
        if brokers and brokers.split(":")[0] not in compose["services"]:
            fail(f"{where}: --brokers {brokers} is not a service")
        environment = service.get("environment", {})
        check_no_secret_in(where, [*service["command"], *environment.values()])
        if brokers:
            check_compose_credentials(deploy, compose, where, service, values)
    expect_some(checked_services, "compose.yaml")


def expect_some(count, where):
    """A check that found nothing to look at (an image renamed, say) fails instead of passing."""
    if count == 0:
        fail(f"{where}: no chatledger invocation found to check")


def check_compose_credentials(deploy, compose, where, service, values):
    """The service reads a compose secret whose user the bundled broker knows, with that password."""
    path = values.get("kafka-config-file") or service.get("environment", {}).get("CHATLEDGER_KAFKA_CONFIG_FILE")
    name = path.removeprefix("/run/secrets/") if path else None
    source = compose.get("secrets", {}).get(name, {}).get("file")
    if name is None or name not in service.get("secrets", []) or source is None:
        fail(f"{where}: Kafka credentials must come from a compose secret through CHATLEDGER_KAFKA_CONFIG_FILE")
        return
    client = properties((deploy / source).read_text())
    kafka = compose["services"]["kafka"]["environment"]
    listener_port = values["brokers"].split(":")[1]
    listener = next((entry.split("://")[0] for entry in kafka["KAFKA_LISTENERS"].split(",")
                     if entry.endswith(":" + listener_port)), None)
    protocols = dict(entry.split(":") for entry in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    if not protocols.get(listener, "").startswith("SASL_") or client.get("security.protocol") != protocols[listener]:
        fail(f"{where}: the broker's listener {listener} is {protocols.get(listener)}, "
             f"the client says {client.get('security.protocol')}")
        return
    jaas_name = kafka["KAFKA_OPTS"].split("login.config=/run/secrets/")[1].split()[0]
    jaas = (deploy / compose["secrets"][jaas_name]["file"]).read_text()
    users = dict(re.findall(r'user_([A-Za-z0-9_-]+)="([^"]*)"', jaas))
    if users.get(client.get("sasl.username")) != client.get("sasl.password"):
        fail(f"{where}: user {client.get('sasl.username')} and its password are not a user of the broker's JAAS file")
    else:
        ok(f"{where}: Kafka credentials from compose secret {name}, user {client['sasl.username']} known to the broker")


def substitute(text, variables):
    return re.sub(r"\$\(([A-Z_]+)\)", lambda match: variables.get(match.group(1), match.group(0)), text)


def check_k8s(deploy, commands, routes):
    documents = [document for path in sorted((deploy / "k8s").glob("*.yaml"))
                 for document in yaml.safe_load_all(path.read_text()) if document]
    by_kind = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    config = {key: value for document in by_kind.get("ConfigMap", []) for key, value in document["data"].items()}
    secrets = {document["metadata"]["name"]: document for document in by_kind.get("Secret", [])}
    port_names = set()
    checked_containers = 0
    for statefulset in by_kind.get("StatefulSet", []):
        pod = statefulset["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
        claims = {claim["metadata"]["name"] for claim in statefulset["spec"].get("volumeClaimTemplates", [])}
        for container in pod["containers"]:
            if not container["image"].startswith("chatledger"):
                continue
            checked_containers += 1
            where = f"k8s StatefulSet {statefulset['metadata']['name']} container {container['name']}"
            variables = dict(config, POD_NAME="chatledger-0")
            env_names = {entry["name"] for entry in container.get("env", [])}
            for reference in re.findall(r"\$\(([A-Z_]+)\)", " ".join(container["args"])):
                if reference not in config and reference not in env_names:
                    fail(f"{where}: $({reference}) is neither in the ConfigMap nor in env")
            values = check_invocation(where, [substitute(argument, variables) for argument in container["args"]], commands)
            mounts = {mount["mountPath"]: mount["name"] for mount in container.get("volumeMounts", [])}
            ports = {port["containerPort"]: port.get("name") for port in container.get("ports", [])}
            port_names |= {name for name in ports.values() if name}
            if "data" in values and mounts.get(values["data"]) not in claims:
                fail(f"{where}: --data {values['data']} is not the persistent volume claim")
            if "keys" in values:
                directory, file_name = values["keys"].rsplit("/", 1)
                volume = volumes.get(mounts.get(directory, ""), {})
                secret = secrets.get(volume.get("secret", {}).get("secretName", ""))
                if secret is None or file_name not in secret.get("stringData", {}):
                    fail(f"{where}: --keys {values['keys']} is not a file of a mounted Secret")
                else:
                    json.loads(secret["stringData"][file_name])
            if "http" in values:
                port = port_of(values["http"])
                if port not in ports:
                    fail(f"{where}: --http port {port} is not a containerPort ({list(ports)})")
                for probe_name, route in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")]:
                    probe = container.get(probe_name, {}).get("httpGet", {})
                    if probe.get("port") != port or probe.get("path") != route or route not in routes:
                        fail(f"{where}: {probe_name} must GET {route} on {port}, has {probe}")
            if values.get("brokers") and values["brokers"] != config.get("CHATLEDGER_BROKERS"):
                fail(f"{where}: --brokers is not the ConfigMap's CHATLEDGER_BROKERS")
            env_values = {entry["name"]: entry.get("value") for entry in container.get("env", [])}
            check_no_secret_in(where, [*container["args"], *env_values.values(), *config.values()])
            if values.get("brokers"):
                path = values.get("kafka-config-file") or env_values.get("CHATLEDGER_KAFKA_CONFIG_FILE")
                directory, _, file_name = (path or "/").rpartition("/")
                volume = volumes.get(mounts.get(directory, ""), {})
                secret = secrets.get(volume.get("secret", {}).get("secretName", ""))
                if secret is None or file_name not in secret.get("stringData", {}):
                    fail(f"{where}: talks to Kafka but its credentials file ({path}) is not a file of a mounted Secret")
                else:
                    ok(f"{where}: Kafka credentials from Secret {secret['metadata']['name']}")
            if container["args"][0] == "ingest" and "group.instance.id=$(POD_NAME)" not in container["args"]:
                if not any("group.instance.id=$(POD_NAME)" in argument for argument in container["args"]):
                    fail(f"{where}: ingest needs static membership: group.instance.id=$(POD_NAME)")
            if not container.get("resources", {}).get("requests"):
                fail(f"{where}: no resource requests")
    expect_some(checked_containers, "k8s")
    for service in by_kind.get("Service", []):
        for port in service["spec"]["ports"]:
            if isinstance(port.get("targetPort"), str) and port["targetPort"] not in port_names:
                fail(f"k8s Service {service['metadata']['name']}: targetPort {port['targetPort']} names no container port")
    if not by_kind.get("PodDisruptionBudget"):
        fail("k8s: no PodDisruptionBudget")
    check_ingress(by_kind)
    listed = set(yaml.safe_load((deploy / "k8s" / "kustomization.yaml").read_text())["resources"])
    manifests = {path.name for path in (deploy / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    if listed != manifests:
        fail(f"k8s: kustomization.yaml lists {sorted(listed)}, the folder has {sorted(manifests)}")


def check_ingress(by_kind):
    """TLS for the query API: the Service exists, SSE is not buffered, a held request is not cut."""
    services = {service["metadata"]["name"]: service for service in by_kind.get("Service", [])}
    ingresses = by_kind.get("Ingress", [])
    if not ingresses:
        fail("k8s: no Ingress terminating TLS in front of the query API")
    for ingress in ingresses:
        where = f"k8s Ingress {ingress['metadata']['name']}"
        annotations = ingress["metadata"].get("annotations", {})
        hosts = {host for entry in ingress["spec"].get("tls", []) for host in entry.get("hosts", [])
                 if entry.get("secretName")}
        for rule in ingress["spec"]["rules"]:
            if rule.get("host") not in hosts:
                fail(f"{where}: host {rule.get('host')} has no TLS entry with a secretName")
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services.get(backend["name"])
                port_names = {port.get("name") for port in (service or {}).get("spec", {}).get("ports", [])}
                if service is None or backend["port"].get("name") not in port_names:
                    fail(f"{where}: backend {backend} is not a port of a Service")
        if annotations.get("nginx.ingress.kubernetes.io/proxy-buffering") != "off":
            fail(f"{where}: Server-Sent Events need nginx.ingress.kubernetes.io/proxy-buffering: \"off\"")
        if int(annotations.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "60")) <= 30:
            fail(f"{where}: the read timeout must exceed the API's longest wait (30 s)")
        ok(f"{where}: TLS for {sorted(hosts)}, SSE unbuffered")


def check_systemd(deploy, commands, binary):
    units = sorted((deploy / "systemd").glob("*.service"))
    environment = {}
    env_file = deploy / "systemd" / "chatledger.env"
    for line in env_file.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            environment[key] = value
    with tempfile.TemporaryDirectory() as directory:
        copies = []
        for unit in units:
            text = unit.read_text()
            state = re.search(r"^StateDirectory=(.*)$", text, re.M)
            exec_start = re.search(r"^ExecStart=(.*)$", text, re.M).group(1)
            tokens = shlex.split(re.sub(r"\$\{([A-Z_]+)\}", lambda match: environment.get(match.group(1), "MISSING"), exec_start))
            if tokens[0] != "/usr/local/bin/chatledger":
                fail(f"{unit.name}: ExecStart runs {tokens[0]}")
            if "MISSING" in tokens:
                fail(f"{unit.name}: ExecStart uses a variable chatledger.env does not set")
            values = check_invocation(unit.name, [token.replace("%H", "host") for token in tokens[1:]], commands)
            if state is None or values.get("data") != "/var/lib/" + state.group(1):
                fail(f"{unit.name}: --data must be the StateDirectory under /var/lib")
            check_no_secret_in(unit.name, [exec_start, *environment.values(),
                                           *re.findall(r"^Environment=(.*)$", text, re.M)])
            if values.get("brokers"):
                credentials = dict(re.findall(r"^LoadCredential=([^:\n]+):(.*)$", text, re.M))
                path = values.get("kafka-config-file") or dict(
                    re.findall(r"^Environment=([A-Z_]+)=(.*)$", text, re.M)).get("CHATLEDGER_KAFKA_CONFIG_FILE", "")
                if not path.startswith("%d/") or path[3:] not in credentials:
                    fail(f"{unit.name}: talks to Kafka but its credentials are not a LoadCredential= read from %d/")
                else:
                    ok(f"{unit.name}: Kafka credentials from the systemd credential {path[3:]}")
            for setting in ["ProtectSystem=strict", "NoNewPrivileges=yes"]:
                if setting not in text:
                    fail(f"{unit.name}: missing {setting}")
            copy = pathlib.Path(directory) / unit.name
            copy.write_text(text.replace("/usr/local/bin/chatledger", str(pathlib.Path(binary).resolve()))
                            .replace("/etc/chatledger/chatledger.env", str(env_file)))
            copies.append(str(copy))
        result = subprocess.run(["systemd-analyze", "verify", *copies], capture_output=True, text=True)
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0 or output:
            fail(f"systemd-analyze verify: exit {result.returncode}: {output}")
        else:
            ok(f"systemd-analyze verify: {', '.join(unit.name for unit in units)}")


def check_cluster(deploy):
    """ingest --advertise names the serve that follows its volume, which advertises the same URL."""
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    pairs = 0
    services = compose["services"]
    for name, service in services.items():
        command = service.get("command", [])
        if not command or command[0] != "ingest" or "--advertise" not in command:
            continue
        url = command[command.index("--advertise") + 1]
        host, port = url.removeprefix("http://").rsplit(":", 1)
        serve = services.get(host, {}).get("command", [])
        volume = next((v.split(":")[0] for v in service.get("volumes", []) if v.split(":")[1] == "/data"), None)
        serve_volume = next((v.split(":")[0] for v in services.get(host, {}).get("volumes", []) if v.split(":")[1] == "/data"), None)
        if not serve or serve[0] != "serve":
            fail(f"compose.yaml service {name}: --advertise {url} names no serve service")
        elif "--advertise" not in serve or serve[serve.index("--advertise") + 1] != url:
            fail(f"compose.yaml service {host}: does not advertise {url} like {name}")
        elif port_of(serve[serve.index("--http") + 1]) != int(port):
            fail(f"compose.yaml service {host}: --http is not the port {url} names")
        elif volume is None or volume != serve_volume:
            fail(f"compose.yaml service {name}: {host} does not follow its data volume")
        else:
            pairs += 1
            ok(f"compose.yaml: {name} and {host} are one cluster instance at {url}")
    expect_some(pairs, "compose.yaml cluster mode")
    documents = [document for path in sorted((deploy / "k8s").glob("*.yaml"))
                 for document in yaml.safe_load_all(path.read_text()) if document]
    for statefulset in (d for d in documents if d["kind"] == "StatefulSet"):
        urls = {}
        for container in statefulset["spec"]["template"]["spec"]["containers"]:
            args = container["args"]
            if "--advertise" in args:
                urls[args[0]] = (args[args.index("--advertise") + 1], args[args.index("--http") + 1] if "--http" in args else "")
        ingest, serve = urls.get("ingest"), urls.get("serve")
        if not ingest or not serve or ingest[0] != serve[0] or not ingest[0].endswith(f":{port_of(serve[1])}"):
            fail(f"k8s StatefulSet {statefulset['metadata']['name']}: ingest and serve must advertise the same URL, serve's port ({urls})")
        else:
            ok(f"k8s StatefulSet {statefulset['metadata']['name']}: ingest and serve advertise {ingest[0]}")


def check_shell(deploy):
    scripts = sorted(str(path) for path in deploy.rglob("*.sh")) + [str(ROOT / ".ci" / "run")]
    result = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"shellcheck: {result.stdout.strip()}")
    else:
        ok(f"shellcheck: {', '.join(pathlib.Path(script).name for script in scripts)}")


def main():
    binary = sys.argv[1]
    deploy = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "deploy"
    commands = documented(binary)
    if "ingest" not in commands or "bench" not in commands:
        raise SystemExit(f"could not read the commands from {binary} --help")
    routes = openapi_paths()
    check_yaml_parses(deploy)
    check_dockerfile(deploy, commands, routes)
    check_compose(deploy, commands, routes)
    check_k8s(deploy, commands, routes)
    check_systemd(deploy, commands, binary)
    check_cluster(deploy)
    check_shell(deploy)
    print(f"{len(checked)} checks passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
