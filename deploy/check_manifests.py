"""Checks the deployment artefacts in deploy/ against the workspace they deploy.

Usage: check_manifests.py REPO_ROOT [DEPLOY_DIR]

Every YAML file under DEPLOY_DIR (default REPO_ROOT/deploy) must parse. Every command
that runs an SPR binary must name a binary of the workspace, and every --flag and SPR_*
variable given to it must exist in that binary's clap definition. The compose file must
run three KRaft brokers with replication 3 and min.insync.replicas 2; both deployments
must create the topics with replication 3; a pod that serves the API must project every
partition, and a projector StatefulSet that shards must pass --instances equal to its
replicas. Prints one line per problem and exits 1 if there is any.
"""

import re
import shlex
import sys
import tomllib
from pathlib import Path

import yaml

# Every SPR client reads its broker connection security from SPR_KAFKA_* variables
# (producers/src/security.rs): the librdkafka property security.protocol, ssl.* or sasl.*.
KAFKA_PREFIX = "SPR_KAFKA_"


def kafka_security_setting(name):
    """Whether `name` is an SPR_KAFKA_* variable the clients accept."""
    if not name.startswith(KAFKA_PREFIX):
        return False
    prop = name[len(KAFKA_PREFIX):].lower().replace("_", ".")
    return prop == "security.protocol" or prop.startswith(("ssl.", "sasl."))


SHELL_OPERATORS = {";", "&&", "||", "|", "&", "do", "done", "then", "fi"}


def workspace_binaries(root):
    """Maps each binary name to the text of its source file."""
    members = tomllib.loads((root / "Cargo.toml").read_text())["workspace"]["members"]
    binaries = {}
    for member in members:
        crate = root / member
        for bin_entry in tomllib.loads((crate / "Cargo.toml").read_text()).get("bin", []):
            binaries[bin_entry["name"]] = (crate / bin_entry["path"]).read_text()
        for path in sorted((crate / "src" / "bin").glob("*.rs")):
            binaries.setdefault(path.stem, path.read_text())
    return binaries


ARG_ATTRIBUTE = re.compile(
    r"#\[arg\((?P<attr>.*?)\)\]\s*(?:(?:///[^\n]*|#\[[^\n]*\])\s*)*(?:pub\s+)?(?P<field>\w+)\s*:",
    re.S,
)


def clap_interface(source):
    """The long flags and the environment variables a clap derive source defines."""
    flags, env = set(), set(re.findall(r'env\s*=\s*"([A-Z0-9_]+)"', source))
    for match in ARG_ATTRIBUTE.finditer(source):
        attr = match.group("attr")
        explicit = re.search(r'long\s*=\s*"([\w-]+)"', attr)
        if explicit:
            flags.add(explicit.group(1))
        elif re.search(r"\blong\b", attr):
            flags.add(match.group("field").replace("_", "-"))
    return flags, env


def invocations(command):
    """Each SPR binary a container command runs, with the arguments that follow it."""
    words = list(command)
    if len(words) >= 3 and Path(words[0]).name in {"sh", "bash"} and words[1] == "-c":
        lexer = shlex.shlex(words[2], posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        words = list(lexer)
    found, current = [], None
    for word in words:
        if word in SHELL_OPERATORS:
            current = None
        elif word.startswith("spr-") or word.startswith("spr_"):
            current = (word, [])
            found.append(current)
        elif current is not None:
            current[1].append(word)
    return found


class Checker:
    """Collects problems while walking the documents."""

    def __init__(self, root):
        self.binaries = {name: clap_interface(src) for name, src in workspace_binaries(root).items()}
        self.all_env = set().union(*(env for _, env in self.binaries.values()))
        self.problems = []

    def problem(self, where, text):
        self.problems.append(f"{where}: {text}")

    def check_container(self, where, command, env_names):
        """Checks one container: its binaries, flags and SPR_* variables."""
        runs = invocations(command or [])
        if not runs:
            self.problem(where, f"runs no SPR binary: {command!r}")
        known_env = set()
        for binary, args in runs:
            if binary not in self.binaries:
                self.problem(where, f"{binary} is not a binary of the workspace")
                continue
            flags, env = self.binaries[binary]
            known_env |= env
            for arg in args:
                if arg.startswith("--"):
                    flag = arg[2:].split("=", 1)[0]
                    if flag not in flags:
                        self.problem(where, f"{binary} has no flag --{flag}")
        for name in env_names:
            if name.startswith(KAFKA_PREFIX):
                if not kafka_security_setting(name):
                    self.problem(where, f"{name} is not a connection security setting")
            elif name.startswith("SPR_") and name not in known_env:
                self.problem(where, f"{name} is read by none of {[b for b, _ in runs]}")
        return runs

    def flag_value(self, runs, binary, flag):
        """The value passed to `flag` of `binary`, or None."""
        for name, args in runs:
            if name == binary:
                for i, arg in enumerate(args):
                    if arg == flag and i + 1 < len(args):
                        return args[i + 1]
                    if arg.startswith(flag + "="):
                        return arg.split("=", 1)[1]
        return None


def check_compose(checker, path, doc):
    services = doc.get("services") or {}
    brokers = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("apache/kafka")}
    if len(brokers) != 3:
        checker.problem(path, f"expected 3 apache/kafka brokers, found {len(brokers)}")
    for name, service in brokers.items():
        env = service.get("environment") or {}
        expected = {
            "KAFKA_DEFAULT_REPLICATION_FACTOR": "3",
            "KAFKA_MIN_INSYNC_REPLICAS": "2",
            "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
        }
        for key, value in expected.items():
            if str(env.get(key)).lower() != value:
                checker.problem(f"{path} {name}", f"{key} is {env.get(key)!r}, expected {value}")
        if "controller" not in str(env.get("KAFKA_PROCESS_ROLES", "")):
            checker.problem(f"{path} {name}", "not a KRaft controller (KAFKA_PROCESS_ROLES)")
    topics_created = False
    for name, service in services.items():
        if name in brokers:
            continue
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
        command = service.get("command")
        if isinstance(command, str):
            command = shlex.split(command)
        runs = checker.check_container(f"{path} {name}", command, list(env))
        if checker.flag_value(runs, "spr-produce", "--replication") is not None:
            topics_created = True
            if checker.flag_value(runs, "spr-produce", "--replication") != "3":
                checker.problem(f"{path} {name}", "create-topics must pass --replication 3")
        projectors = [args for b, args in runs if b == "spr-projector"]
        if any(flag in args for args in projectors for flag in ("--instances", "--partitions")):
            checker.problem(f"{path} {name}", "the compose API reads one projector: it must own every partition")
    if not topics_created:
        checker.problem(path, "no service runs spr-produce create-topics --replication 3")


def pod_spec(doc):
    spec = doc.get("spec") or {}
    if doc.get("kind") in {"Deployment", "StatefulSet", "Job"}:
        return spec.get("template", {}).get("spec", {})
    return None


def check_k8s(checker, path, doc):
    pod = pod_spec(doc)
    if pod is None:
        return
    where = f"{path} {doc['kind']}/{doc['metadata']['name']}"
    pod_security = pod.get("securityContext") or {}
    if pod_security.get("runAsNonRoot") is not True:
        checker.problem(where, "pod securityContext must set runAsNonRoot: true")
    all_runs = []
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        cwhere = f"{where} container {container['name']}"
        env_names = [e["name"] for e in container.get("env", [])]
        command = (container.get("command") or []) + (container.get("args") or [])
        all_runs += checker.check_container(cwhere, command, env_names)
        security = container.get("securityContext") or {}
        if security.get("readOnlyRootFilesystem") is not True:
            checker.problem(cwhere, "securityContext must set readOnlyRootFilesystem: true")
        resources = container.get("resources") or {}
        if not resources.get("requests") or not resources.get("limits"):
            checker.problem(cwhere, "needs resource requests and limits")
    if doc["kind"] == "Job":
        if checker.flag_value(all_runs, "spr-produce", "--replication") != "3":
            checker.problem(where, "create-topics must pass --replication 3")
    binaries = {b for b, _ in all_runs}
    if "spr-projector" in binaries and doc["kind"] == "StatefulSet":
        replicas = doc["spec"].get("replicas", 1)
        instances = checker.flag_value(all_runs, "spr-projector", "--instances")
        if instances is not None and int(instances) != replicas:
            checker.problem(where, f"--instances {instances} but replicas {replicas}")
        if "spr-api" in binaries and (
            (instances is not None and int(instances) != 1)
            or checker.flag_value(all_runs, "spr-projector", "--partitions") is not None
        ):
            checker.problem(where, "a pod that serves the API must project every partition")


def main():
    root = Path(sys.argv[1]).resolve()
    deploy = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else root / "deploy"
    checker = Checker(root)
    files = sorted(deploy.rglob("*.yaml")) + sorted(deploy.rglob("*.yml"))
    if not files:
        checker.problem(deploy, "no YAML files")
    documents = []
    for path in files:
        try:
            documents += [(path.relative_to(deploy), d) for d in yaml.safe_load_all(path.read_text()) if d]
        except yaml.YAMLError as error:
            checker.problem(path, f"does not parse: {error}")
    config_env = set()
    for _, doc in documents:
        if doc.get("kind") == "ConfigMap":
            config_env |= set(doc.get("data") or {})
    unknown = sorted(
        n
        for n in config_env
        if n.startswith("SPR_") and n not in checker.all_env and not kafka_security_setting(n)
    )
    for name in unknown:
        checker.problem("ConfigMap", f"{name} is read by no SPR binary")
    for path, doc in documents:
        if "services" in doc:
            check_compose(checker, path, doc)
        elif "kind" in doc:
            check_k8s(checker, path, doc)
    for line in checker.problems:
        print(line)
    print(f"checked {len(documents)} documents in {len(files)} files: {len(checker.problems)} problems")
    sys.exit(1 if checker.problems else 0)


if __name__ == "__main__":
    main()
