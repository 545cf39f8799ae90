"""A scratch builder for running the bake recipe without EC2: a root directory and fake programs.

The recipe prefixes every absolute path with TFBAKE_ROOT and finds its programs through PATH, so
a test gives it a scratch root that holds the files a builder has (identity files, cloud-init and
SSM agent state, /etc/os-release) and a PATH whose docker, systemctl, apt-get, dnf, aws,
cloud-init and sync are recording stand-ins. PATH holds nothing else but links to the few
ordinary tools the recipe needs, so a missing program is really missing and the host's own
docker or cloud-init can never be reached.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[2] / "tfbake" / "bake" / "recipe.sh"

# Ordinary tools the recipe (and the tests' provision commands) may call.
SYSTEM_TOOLS = (
    "bash",
    "sh",
    "base64",
    "cat",
    "chmod",
    "dirname",
    "env",
    "mkdir",
    "mktemp",
    "rm",
    "sed",
    "stat",
    "tail",
    "tar",
    "gzip",
    "touch",
    "find",
    "truncate",
    "sleep",
    "cut",
    "timeout",
    "tee",
    "tr",
    "awk",
    "grep",
    "python3",
)
STAND_INS = (
    "docker", "systemctl", "journalctl", "apt-get", "dnf", "aws", "cloud-init", "sync",
    "ansible-playbook", "ctr",
)  # fmt: skip

OS_RELEASES = {
    "debian": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
    "ubuntu": 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n',
    "amazon": 'NAME="Amazon Linux"\nVERSION_ID="2023"\nID="amzn"\nID_LIKE="fedora"\n',
    "rhel": 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nID_LIKE="fedora"\n',
}
SSM_AGENT_UNIT = "amazon-ssm-agent.service"
SNAP_SSM_AGENT_UNIT = "snap.amazon-ssm-agent.amazon-ssm-agent.service"

# Files a used builder has that must not reach the AMI, relative to the root.
IDENTITY_FILES = (
    "etc/docker/key.json",
    "var/lib/docker/engine-id",
    "var/run/docker.pid",
    "etc/ssh/ssh_host_rsa_key",
    "etc/ssh/ssh_host_rsa_key.pub",
    "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_ed25519_key.pub",
    "root/.bash_history",
    "home/admin/.bash_history",
    "home/ec2-user/.bash_history",
)
CLOUD_INIT_STATE = (
    "var/lib/cloud/instances/i-0builder/user-data.txt",
    "var/lib/cloud/data/instance-id",
    "var/lib/cloud/sem/config_scripts_per_once.once",
    "var/log/cloud-init.log",
)
SSM_AGENT_STATE = (
    "var/lib/amazon/ssm/i-0builder/document/state/current/command-1",
    "var/lib/amazon/ssm/i-0baseami/document/state/completed/command-0",
    "var/lib/amazon/ssm/registration",
    "var/lib/amazon/ssm/Vault/Store/RegistrationKey",
    "var/lib/amazon/ssm/runtimeconfig/identity_config.json",
    "var/lib/amazon/ssm/credentials",
)
# What the agent needs to run on the next instance: it must survive the cleanup.
SSM_AGENT_INSTALLATION = (
    "etc/amazon/ssm/amazon-ssm-agent.json",
    "var/lib/amazon/ssm/plugins/awsCloudWatchPlugin/manifest.json",
)
CREDENTIAL_HELPER_STATE = "root/.ecr/cache.json"
MACHINE_ID = "etc/machine-id"

# One program for every stand-in: it tells which it is by the name it was called by, appends
# {"argv": [...]} (plus what the call saw, where that matters) to TFBAKE_TEST_LOG, and keeps a
# small image store so that `docker image inspect` finds only what was pulled or tagged.
_STAND_IN = r"""
import json, os, sys, time
from pathlib import Path

name = Path(sys.argv[0]).name
args = sys.argv[1:]
bin_dir = Path(sys.argv[0]).parent
store = Path(os.environ["TFBAKE_TEST_STATE"]) / "images"
entry = {"argv": [name, *args]}


def record():
    with open(os.environ["TFBAKE_TEST_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


# One file per reference, so that concurrent pulls never lose each other's updates.
def entry_path(ref):
    return store / ref.replace("/", "%")


def has_image(ref):
    return entry_path(ref).exists()


def add_image(ref, digest=""):
    store.mkdir(parents=True, exist_ok=True)
    entry_path(ref).write_text(digest)


def image_digest(ref):
    return entry_path(ref).read_text()


def docker_config():
    return Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"


def wait_for_concurrent_pulls(ref):
    # Each pull waits until N pulls have started: a recipe that pulls one at a time fails.
    wanted = int(os.environ.get("TFBAKE_TEST_PULL_BARRIER", "0"))
    if not wanted:
        return True
    started = store.parent / "pulls-started"
    started.mkdir(exist_ok=True)
    (started / ref.replace("/", "_")).touch()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if len(list(started.iterdir())) >= wanted:
            return True
        time.sleep(0.02)
    return False


def docker():
    if args[:1] == ["pull"]:
        ref = args[-1]
        config = docker_config()
        entry["credentials"] = config.read_text() if config.exists() else None
        entry["credentials_path"] = str(config)
        entry["credentials_mode"] = oct(config.stat().st_mode & 0o777) if config.exists() else None
        record()
        if not wait_for_concurrent_pulls(ref):
            sys.exit(f"pull of {ref} was never concurrent with the others")
        if ref in os.environ.get("TFBAKE_TEST_FAIL_PULL", "").split():
            sys.exit(f"Error response from daemon: manifest for {ref} not found: manifest unknown")
        add_image(ref)
        print(ref)
    elif args[:1] == ["tag"]:
        record()
        if not has_image(args[1]):
            sys.exit(f"Error response from daemon: No such image: {args[1]}")
        add_image(args[2])
    elif args[:2] == ["image", "inspect"]:
        record()
        missing = [ref for ref in args[2:] if not has_image(ref)]
        if missing:
            sys.exit(f"Error: No such image: {missing[0]}")
        print("[{}]")
    elif args[:1] == ["rmi"]:
        record()
        for ref in args[1:]:
            entry_path(ref).unlink(missing_ok=True)
    elif args[:1] == ["login"]:
        # The password must come on stdin, never as an argument.
        entry["stdin"] = sys.stdin.read().strip()
        record()
        config = docker_config()
        settings = json.loads(config.read_text()) if config.exists() else {}
        settings.setdefault("auths", {})[args[-1]] = {"auth": "QVdTOnNlY3JldA=="}
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(settings))
        print("Login Succeeded")
    else:
        record()


def ctr():
    # ctr [--namespace NS] images pull|tag|check ...; namespaces|containers list --quiet;
    # tasks kill|delete, containers delete. An image's store entry holds its digest.
    rest = list(args)
    namespace = "default"
    if rest[:1] == ["--namespace"]:
        namespace, rest = rest[1], rest[2:]
    entry["namespace"] = namespace
    if rest[:2] == ["images", "pull"]:
        ref = rest[-1]
        hosts = rest[rest.index("--hosts-dir") + 1] if "--hosts-dir" in rest else None
        entry["hosts"] = (
            {str(p.relative_to(hosts)): p.read_text() for p in Path(hosts).rglob("hosts.toml")}
            if hosts else None
        )
        record()
        if not wait_for_concurrent_pulls(ref):
            sys.exit(f"pull of {ref} was never concurrent with the others")
        if ref in os.environ.get("TFBAKE_TEST_FAIL_PULL", "").split():
            sys.exit(f"ctr: failed to resolve reference \"{ref}\": not found")
        add_image(f"{namespace}/{ref}", ref.split("@")[-1])
    elif rest[:2] == ["images", "tag"]:
        record()
        source, target = rest[-2], rest[-1]
        if not has_image(f"{namespace}/{source}"):
            sys.exit(f"ctr: image \"{source}\": not found")
        moved = os.environ.get("TFBAKE_TEST_MOVE_TAG", "")
        digest = "sha256:" + "0" * 64 if target == moved else image_digest(f"{namespace}/{source}")
        add_image(f"{namespace}/{target}", digest)
    elif rest[:2] == ["images", "check"]:
        record()
        ref = rest[-1].removeprefix("name==")
        print("REF TYPE DIGEST STATUS SIZE UNPACKED")
        if has_image(f"{namespace}/{ref}"):
            digest = image_digest(f"{namespace}/{ref}")
            print(f"{ref} application/vnd.oci.image.index.v1+json {digest} complete (2/2) "
                  "1.0 MiB/1.0 MiB true")
    elif rest[:2] == ["namespaces", "list"]:
        record()
        print("\n".join(json.loads(os.environ.get("TFBAKE_TEST_CONTAINERS", "{}"))))
    elif rest[:2] == ["containers", "list"]:
        record()
        containers = json.loads(os.environ.get("TFBAKE_TEST_CONTAINERS", "{}"))
        print("\n".join(containers.get(namespace, [])))
    else:
        record()


def systemctl():
    record()
    failed = os.environ.get("TFBAKE_TEST_FAILED_UNITS", "").split()
    if args[:1] == ["list-unit-files"]:
        units = os.environ.get("TFBAKE_TEST_UNITS", "").split()
        for unit in args[1:]:
            if not unit.startswith("-") and unit in units:
                print(f"{unit} enabled enabled")
    elif args[:2] == ["enable", "--now"] and args[2] in failed:
        print(f"Job for {args[2]} failed because the control process exited with error code.")
        sys.exit(1)
    elif args[:1] == ["is-failed"]:
        sys.exit(0 if args[-1] in failed else 1)


def journalctl():
    # TFBAKE_TEST_JOURNAL: {unit: [[sender, text], ...]}. A unit's journal (--unit) holds
    # systemd's lines about it too; _SYSTEMD_UNIT= matches only what its own processes logged.
    record()
    journal = json.loads(os.environ.get("TFBAKE_TEST_JOURNAL", "{}"))
    wanted = int(args[args.index("--lines") + 1]) if "--lines" in args else 10**6
    lines = []
    if "--unit" in args:
        lines = [text for _, text in journal.get(args[args.index("--unit") + 1], [])]
    for arg in args:
        if arg.startswith("_SYSTEMD_UNIT="):
            own = journal.get(arg.split("=", 1)[1], [])
            lines = [text for sender, text in own if sender != "systemd"]
    print("\n".join(lines[-wanted:]))


def package_manager(programs):
    record()
    # Installing a package puts its program on PATH, as on a real host.
    for package, program in programs.items():
        if "install" in args and package in args and not (bin_dir / program).exists():
            (bin_dir / program).symlink_to(Path(__file__).resolve())


def ansible_playbook():
    # What the playbook would see: its working directory's files and the extra vars file.
    here = Path.cwd()
    entry["cwd"] = str(here)
    entry["cwd_mode"] = oct(here.parent.stat().st_mode & 0o777)
    entry["files"] = {
        path.relative_to(here).as_posix(): path.read_text()
        for path in sorted(here.rglob("*"))
        if path.is_file()
    }
    extra = [arg for arg in args if arg.startswith("@")]
    entry["extra_vars"] = Path(extra[0][1:]).read_text() if extra else None
    entry["local_temp"] = os.environ.get("ANSIBLE_LOCAL_TEMP")
    record()
    status = int(os.environ.get("TFBAKE_TEST_ANSIBLE_STATUS", "0"))
    if status:
        print("TASK [the failing task] " + "*" * 40)
        print("fatal: [localhost]: FAILED! => {\"msg\": \"task failed\"}")
        print("PLAY RECAP " + "*" * 40)
        sys.exit(status)
    print("PLAY RECAP localhost : ok=1 changed=1 failed=0")


def aws():
    record()
    if args[:1] == [os.environ.get("TFBAKE_TEST_FAIL_AWS", "")]:
        sys.exit(f"An error occurred (AccessDeniedException) when calling {args[0]}")
    if args[:2] == ["ssm", "get-parameter"]:
        print(os.environ["TFBAKE_TEST_PARAMETER_VALUE"])
    elif args[:2] == ["ecr", "get-login-password"]:
        print("ecr-password-from-instance-role")


if name == "docker":
    docker()
elif name == "systemctl":
    systemctl()
elif name == "journalctl":
    journalctl()
elif name == "ctr":
    ctr()
elif name == "apt-get":
    package_manager(
        {"docker.io": "docker", "containerd": "ctr", "ansible-core": "ansible-playbook"}
    )
elif name == "dnf":
    package_manager({"docker": "docker", "containerd": "ctr", "ansible-core": "ansible-playbook"})
elif name == "ansible-playbook":
    ansible_playbook()
elif name == "aws":
    aws()
else:
    record()
"""


@dataclass(frozen=True)
class RecipeRun:
    """The outcome of one run of the recipe: exit status, merged output, and recorded calls."""

    returncode: int
    output: str
    calls: list[list[str]]
    entries: list[dict[str, object]]

    def calls_to(self, program: str) -> list[list[str]]:
        return [call[1:] for call in self.calls if call[0] == program]


@dataclass(frozen=True)
class ScratchBuilder:
    """A builder's root directory plus the PATH and state the recipe's stand-ins share."""

    root: Path
    bin_dir: Path
    state_dir: Path
    log: Path
    base_path: str

    def run(self, **env: str) -> RecipeRun:
        """Run the real recipe with bash; `env` adds or overrides the environment."""
        self.log.write_text("")
        environment = {
            "PATH": f"{self.bin_dir}{os.pathsep}{self.base_path}",
            "HOME": str(self.root / "root"),
            "TMPDIR": str(self.state_dir),
            "LANG": "C",
            "TFBAKE_ROOT": str(self.root),
            "TFBAKE_TEST_LOG": str(self.log),
            "TFBAKE_TEST_STATE": str(self.state_dir),
            "TFBAKE_TEST_UNITS": f"docker.service docker.socket {SSM_AGENT_UNIT}",
            "SSM_Images": "",
            "SSM_Provision": "",
            "SSM_RegistryCredentialsParameter": "",
            "SSM_EcrRegistries": "",
            "SSM_Region": "eu-west-1",
            "SSM_AnsibleBundle": "",
            "SSM_AnsiblePlaybook": "",
            "SSM_AnsibleExtraVars": "",
            **env,
        }
        completed = subprocess.run(
            [shutil.which("bash") or "/bin/bash", str(_shipped_recipe())],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=30,
            check=False,
        )
        entries = [json.loads(line) for line in self.log.read_text().splitlines()]
        return RecipeRun(
            returncode=completed.returncode,
            output=completed.stdout,
            calls=[entry["argv"] for entry in entries],
            entries=entries,
        )

    def install_docker(self) -> None:
        """Put the docker stand-in on PATH, as on a base AMI that ships Docker."""
        self.install("docker")

    def install(self, program: str) -> None:
        """Put a stand-in on PATH, as on a base AMI that ships the program."""
        target = self.bin_dir / program
        if not target.exists():
            target.symlink_to(self.bin_dir / "stand_in.py")

    def without(self, program: str) -> None:
        """Take a stand-in off PATH, as on a host where the program is not installed."""
        (self.bin_dir / program).unlink()

    def set_os(self, os_name: str) -> None:
        (self.root / "etc" / "os-release").write_text(OS_RELEASES[os_name])

    def path(self, relative: str) -> Path:
        return self.root / relative


def make_scratch_builder(base: Path, *, os_name: str = "debian") -> ScratchBuilder:
    """A builder as the base AMI leaves it after a first boot, with Docker installed."""
    root = base / "root"
    bin_dir = base / "bin"
    system_dir = base / "system-bin"
    state_dir = base / "state"
    for directory in (root, bin_dir, system_dir, state_dir):
        directory.mkdir(parents=True)

    for tool in SYSTEM_TOOLS:
        found = shutil.which(tool)
        if found is None:
            raise RuntimeError(f"the recipe tests need '{tool}' on PATH")
        (system_dir / tool).symlink_to(found)

    stand_in = bin_dir / "stand_in.py"
    # -I -S: no site-packages to import, which makes each call several times faster.
    stand_in.write_text(f"#!{sys.executable} -IS\n{_STAND_IN}")
    stand_in.chmod(0o755)
    for program in STAND_INS:
        if program not in ("docker", "ctr"):
            (bin_dir / program).symlink_to(stand_in)

    files = (
        *IDENTITY_FILES,
        *CLOUD_INIT_STATE,
        *SSM_AGENT_STATE,
        *SSM_AGENT_INSTALLATION,
        CREDENTIAL_HELPER_STATE,
    )
    for relative in files:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"state of the builder: {relative}\n")
    (root / "var/lib/cloud/instance").symlink_to(root / "var/lib/cloud/instances/i-0builder")
    (root / MACHINE_ID).write_text("3f1a9c0d2b7e4f6a8c5d1e0f9a8b7c6d\n")

    builder = ScratchBuilder(
        root=root,
        bin_dir=bin_dir,
        state_dir=state_dir,
        log=base / "calls.jsonl",
        base_path=str(system_dir),
    )
    builder.set_os(os_name)
    builder.install_docker()
    builder.install("ctr")
    return builder


@functools.cache
def _shipped_recipe() -> Path:
    """recipe.sh as the documents ship it (without its comments), which is what builders run."""
    from tfbake.bake.comments import without_shell_comments

    path = Path(tempfile.mkdtemp(prefix="tfbake-recipe-")) / "recipe.sh"
    path.write_text(without_shell_comments(RECIPE.read_text(encoding="utf-8")), encoding="utf-8")
    return path
