"""The on-builder recipe (tfbake/bake/recipe.sh), run for real with bash under a scratch root.

Programs with effects on a host (docker, systemctl, package managers, aws, cloud-init, sync)
are recording stand-ins; see tests/support/scratch_root.py.
"""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.scratch_root import (
    CLOUD_INIT_STATE,
    CREDENTIAL_HELPER_STATE,
    IDENTITY_FILES,
    MACHINE_ID,
    RECIPE,
    SNAP_SSM_AGENT_UNIT,
    SSM_AGENT_INSTALLATION,
    SSM_AGENT_STATE,
    SSM_AGENT_UNIT,
    RecipeRun,
    ScratchBuilder,
    make_scratch_builder,
)
from tfbake.model.image_set import Ansible
from tfbake.spec.ansible import ansible_from_mapping

NGINX_DIGEST = "sha256:" + "a" * 64
APP_DIGEST = "sha256:" + "b" * 64
AGENT_DIGEST = "sha256:" + "c" * 64
NGINX = f"docker.io/library/nginx:1.27@{NGINX_DIGEST}"
ECR_HOST = "123456789012.dkr.ecr.us-east-2.amazonaws.com"
APP = f"{ECR_HOST}/team/app:v1.2.3@{APP_DIGEST}"
# A digest-only reference: pulled and verified, but there is no tag to give it.
AGENT = f"registry.example.com:5000/ops/agent@{AGENT_DIGEST}"
IMAGES = f"{NGINX} {APP} {AGENT}"
PINNED = [
    f"docker.io/library/nginx@{NGINX_DIGEST}",
    f"{ECR_HOST}/team/app@{APP_DIGEST}",
    f"registry.example.com:5000/ops/agent@{AGENT_DIGEST}",
]
AUTHS = '{"registry.example.com:5000": {"auth": "b3BzOnMzY3JldC12YWx1ZQ=="}}'
SECRET = "b3BzOnMzY3JldC12YWx1ZQ=="


APT_LOCK_WAIT = ["-o", "DPkg::Lock::Timeout=300"]


def installs(run: RecipeRun, manager: str) -> list[list[str]]:
    """The calls of a package manager that install or fetch, not those that clean caches."""
    return [call for call in run.calls_to(manager) if "install" in call or "update" in call]


def encode_provision(*commands: str) -> str:
    """SSM_Provision as the Command document receives it: base64 of NUL-terminated commands."""
    return base64.b64encode(b"".join(cmd.encode() + b"\0" for cmd in commands)).decode()


@pytest.fixture
def builder(tmp_path: Path) -> ScratchBuilder:
    return make_scratch_builder(tmp_path)


def bake(builder: ScratchBuilder, **env: str) -> RecipeRun:
    """A full bake of the three images, with private-registry credentials and an ECR login."""
    settings = {
        "SSM_Images": IMAGES,
        "SSM_RegistryCredentialsParameter": "/tfbake/registry-auths",
        "SSM_EcrRegistries": ECR_HOST,
        "TFBAKE_TEST_PARAMETER_VALUE": AUTHS,
        **env,
    }
    return builder.run(**settings)


def assert_succeeded(run: RecipeRun) -> None:
    assert run.returncode == 0, run.output


def assert_failed_with(run: RecipeRun, *texts: str) -> None:
    assert run.returncode != 0, run.output
    tail = "\n".join(run.output.splitlines()[-8:])
    for text in texts:
        assert text in tail, run.output


# ---- images ---------------------------------------------------------------------------------


def test_pulls_every_image_by_digest(builder: ScratchBuilder) -> None:
    run = bake(builder)
    assert_succeeded(run)
    pulled = [call[-1] for call in run.calls_to("docker") if call[0] == "pull"]
    assert sorted(pulled) == sorted(PINNED)
    assert "tfbake: pulling 3 images" in run.output


def test_images_separated_by_any_whitespace_are_all_pulled(builder: ScratchBuilder) -> None:
    run = bake(builder, SSM_Images=f" {NGINX}\n{APP}\t{AGENT}\n")
    assert_succeeded(run)
    pulled = [call[-1] for call in run.calls_to("docker") if call[0] == "pull"]
    assert sorted(pulled) == sorted(PINNED)


def test_pulls_run_concurrently(builder: ScratchBuilder) -> None:
    # Each stand-in pull waits until all three have started; one-at-a-time pulls would fail.
    run = bake(builder, TFBAKE_TEST_PULL_BARRIER="3")
    assert_succeeded(run)


def test_tags_each_image_by_name_and_tag_but_not_a_digest_only_one(
    builder: ScratchBuilder,
) -> None:
    run = bake(builder)
    assert_succeeded(run)
    tagged = [call[1:] for call in run.calls_to("docker") if call[0] == "tag"]
    assert tagged == [
        [PINNED[0], "docker.io/library/nginx:1.27"],
        [PINNED[1], f"{ECR_HOST}/team/app:v1.2.3"],
    ]


def test_verifies_every_digest_and_tag(builder: ScratchBuilder) -> None:
    run = bake(builder)
    assert_succeeded(run)
    inspected = [call[2] for call in run.calls_to("docker") if call[:2] == ["image", "inspect"]]
    assert set(PINNED) <= set(inspected)
    assert {"docker.io/library/nginx:1.27", f"{ECR_HOST}/team/app:v1.2.3"} <= set(inspected)
    for image in (NGINX, APP, AGENT):
        assert f"tfbake: verified {image}" in run.output
    assert "tfbake: verified 3 images" in run.output


def test_a_failed_pull_fails_the_bake_naming_the_image(builder: ScratchBuilder) -> None:
    run = bake(builder, TFBAKE_TEST_FAIL_PULL=PINNED[1])
    assert_failed_with(run, "1 of 3 image pulls failed", APP, "manifest unknown")
    docker_commands = {call[0] for call in run.calls_to("docker")}
    assert "tag" not in docker_commands
    assert "image" not in docker_commands
    # Nothing after the pulls ran: the builder was not cleaned up for an image.
    assert builder.path("etc/docker/key.json").exists()
    assert not run.calls_to("sync")


def test_a_missing_image_fails_verification_naming_it(builder: ScratchBuilder) -> None:
    # A provision command removes an image that was pulled: the AMI would lack it.
    removal = f"docker rmi {PINNED[0]}"
    run = bake(builder, SSM_Provision=encode_provision(removal))
    assert_failed_with(run, "verify failed", NGINX)
    assert builder.path("etc/docker/key.json").exists()


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param("docker.io/library/nginx:1.27", id="not-pinned"),
        pytest.param("nginx@" + NGINX_DIGEST, id="registry-not-explicit"),
        pytest.param("docker.io/library/nginx@sha256:abc", id="short-digest"),
        pytest.param("docker.io/library/nginx@sha256:" + "A" * 64, id="upper-case-digest"),
        pytest.param("docker.io/library/Nginx@" + NGINX_DIGEST, id="upper-case-repository"),
        pytest.param("docker.io/library/nginx;reboot@" + NGINX_DIGEST, id="shell-metacharacter"),
        pytest.param("docker.io/library/nginx:$(reboot)@" + NGINX_DIGEST, id="substitution"),
    ],
)
def test_an_invalid_reference_is_rejected_before_any_docker_call(
    builder: ScratchBuilder, entry: str
) -> None:
    run = bake(builder, SSM_Images=f"{NGINX} {entry}")
    assert_failed_with(run, f"invalid image reference in SSM_Images: '{entry}'")
    assert not run.calls_to("docker")
    assert not run.calls_to("aws")


def test_an_empty_image_list_is_rejected(builder: ScratchBuilder) -> None:
    run = bake(builder, SSM_Images="")
    assert_failed_with(run, "SSM_Images is empty")
    assert not run.calls_to("docker")


# ---- provision commands ---------------------------------------------------------------------


def test_provision_commands_run_in_order_with_their_exact_text(
    builder: ScratchBuilder, tmp_path: Path
) -> None:
    out = tmp_path / "provision.out"
    commands = [
        f"printf '%s\\n' 'first: $HOME \"double\" \\back' >> {out}",
        # Two lines in one command, with a variable the command itself sets and expands.
        f'word="sec ond"\nprintf "%s\\n" "$word" >> {out}',
        f"docker run --rm --pull=never docker.io/library/nginx:1.27 true; echo third >> {out}",
    ]
    run = bake(builder, SSM_Provision=encode_provision(*commands))
    assert_succeeded(run)
    assert out.read_text().splitlines() == ['first: $HOME "double" \\back', "sec ond", "third"]
    # Provision runs after the images are tagged and before they are verified.
    docker = [call[0] for call in run.calls_to("docker")]
    assert docker.index("run") > max(i for i, name in enumerate(docker) if name == "tag")
    assert docker.index("run") < docker.index("image")
    assert "tfbake: running 3 provision commands" in run.output


def test_a_failing_provision_command_is_named_by_its_index(
    builder: ScratchBuilder, tmp_path: Path
) -> None:
    never = tmp_path / "never"
    run = bake(
        builder,
        SSM_Provision=encode_provision("true", "echo second\nexit 7", f"touch {never}"),
    )
    assert_failed_with(run, "provision command 2 of 3 failed (exit status 7)")
    assert not never.exists()
    assert not [call for call in run.calls_to("docker") if call[0] == "image"]


def test_provision_commands_are_named_by_position_never_by_their_text(
    builder: ScratchBuilder,
) -> None:
    secret = "TOKEN='s3cr3t-t0ken'; : \"Authorization: Bearer $TOKEN\""
    run = bake(builder, SSM_Provision=encode_provision("true", f"{secret}; exit 3"))
    assert_failed_with(run, "provision command 2 of 2 failed (exit status 3)")
    assert "provision command 1 of 2" in run.output
    assert "s3cr3t" not in run.output


def test_provision_commands_run_with_pipefail(builder: ScratchBuilder) -> None:
    run = bake(builder, SSM_Provision=encode_provision("false | cat"))
    assert_failed_with(run, "provision command 1 of 1 failed (exit status 1)")


def test_provision_without_a_final_nul_is_rejected(builder: ScratchBuilder) -> None:
    run = bake(builder, SSM_Provision=base64.b64encode(b"true\0echo unterminated").decode())
    assert_failed_with(run, "not terminated by a NUL byte")
    assert not run.calls_to("docker")


# ---- Ansible ---------------------------------------------------------------------------------

PLAYBOOK_FILES = {
    "site.yml": "- hosts: localhost\n  roles: [web]\n",
    "roles/web/tasks/main.yml": "- copy: {content: '{{ motd }}', dest: /etc/motd}\n",
    "group_vars/all.yml": "motd: baked\n",
}


def ansible_bundle(directory: Path, **extra_vars: object) -> Ansible:
    for relative, text in PLAYBOOK_FILES.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)
    spec = {"playbook": "site.yml", "files": ["site.yml", "roles/", "group_vars/all.yml"]}
    return ansible_from_mapping({**spec, "extra_vars": extra_vars}, directory)


def ansible_env(bundle: Ansible) -> dict[str, str]:
    return {
        "SSM_AnsibleBundle": bundle.encoded(),
        "SSM_AnsiblePlaybook": bundle.playbook,
        "SSM_AnsibleExtraVars": bundle.extra_vars_json,
    }


@pytest.mark.parametrize(
    ("bundle", "reason"),
    [
        (base64.b64encode(b"not a gzip tar").decode(), "is not a gzip tar"),
        ("%%%not-base64%%%", "is not base64"),
    ],
)
def test_a_bundle_that_does_not_unpack_stops_the_bake_before_any_playbook(
    builder: ScratchBuilder, tmp_path: Path, bundle: str, reason: str
) -> None:
    # Once a failing tar inside a subshell still let the playbook run.
    env = {**ansible_env(ansible_bundle(tmp_path / "ansible")), "SSM_AnsibleBundle": bundle}
    run = bake(builder, **env)
    assert_failed_with(run, f"cannot unpack the Ansible bundle: SSM_AnsibleBundle {reason}")
    assert not run.calls_to("ansible-playbook")


def test_runs_the_playbook_locally_with_its_files_and_extra_vars(
    builder: ScratchBuilder, tmp_path: Path
) -> None:
    bundle = ansible_bundle(tmp_path / "ansible", motd="hello", port=8080)
    run = bake(builder, **ansible_env(bundle))
    assert_succeeded(run)
    (call,) = [entry for entry in run.entries if entry["argv"][0] == "ansible-playbook"]
    argv = [str(arg) for arg in call["argv"]]  # type: ignore[attr-defined]
    extra_vars_file = argv[6].removeprefix("@")
    assert argv[1:6] == ["-i", "localhost,", "-c", "local", "--extra-vars"]
    assert argv[7:] == ["site.yml"]
    assert call["files"] == PLAYBOOK_FILES
    assert json.loads(str(call["extra_vars"])) == {"motd": "hello", "port": 8080}
    # Unpacked privately under the root's /tmp, and gone once the playbook ran.
    work = Path(str(call["cwd"])).parent
    assert work.parent == builder.path("tmp")
    assert extra_vars_file == str(work / "extra-vars.json")
    assert call["cwd_mode"] == "0o700"
    assert call["local_temp"] == str(work / "tmp")
    assert not work.exists()
    assert "tfbake: Ansible playbook site.yml done" in run.output


def test_the_playbook_runs_after_provision_and_before_verification(
    builder: ScratchBuilder, tmp_path: Path
) -> None:
    bundle = ansible_bundle(tmp_path / "ansible")
    provision = encode_provision("docker run --rm docker.io/library/nginx:1.27 true")
    run = bake(builder, SSM_Provision=provision, **ansible_env(bundle))
    assert_succeeded(run)
    order = [call[0] if call[0] != "docker" else f"docker {call[1]}" for call in run.calls]
    assert order.index("docker run") < order.index("ansible-playbook")
    assert order.index("ansible-playbook") < order.index("docker image")


def test_a_failing_playbook_fails_the_bake_naming_it(
    builder: ScratchBuilder, tmp_path: Path
) -> None:
    bundle = ansible_bundle(tmp_path / "ansible")
    run = bake(builder, TFBAKE_TEST_ANSIBLE_STATUS="2", **ansible_env(bundle))
    assert_failed_with(
        run,
        "Ansible playbook site.yml failed (exit status 2) at task [the failing task]: "
        '{"msg": "task failed"}',
    )
    (call,) = [entry for entry in run.entries if entry["argv"][0] == "ansible-playbook"]
    assert not Path(str(call["cwd"])).parent.exists()
    assert not [call for call in run.calls_to("docker") if call[0] == "image"]
    assert not run.calls_to("sync")


def test_without_a_bundle_ansible_is_neither_installed_nor_run(builder: ScratchBuilder) -> None:
    builder.without("ansible-playbook")
    run = bake(builder)
    assert_succeeded(run)
    assert not run.calls_to("ansible-playbook")
    assert not installs(run, "apt-get")


@pytest.mark.parametrize(
    ("os_name", "manager", "calls"),
    [
        (
            "debian",
            "apt-get",
            [
                [*APT_LOCK_WAIT, "update", "-qq"],
                [*APT_LOCK_WAIT, "install", "-y", "-qq", "--no-install-recommends", "ansible-core"],
            ],
        ),
        ("amazon", "dnf", [["install", "-y", "-q", "ansible-core"]]),
    ],
)
def test_installs_ansible_core_when_missing(
    builder: ScratchBuilder, tmp_path: Path, os_name: str, manager: str, calls: list[list[str]]
) -> None:
    builder.without("ansible-playbook")
    builder.set_os(os_name)
    run = bake(builder, **ansible_env(ansible_bundle(tmp_path / "ansible")))
    assert_succeeded(run)
    assert installs(run, manager) == calls
    assert len(run.calls_to("ansible-playbook")) == 1


def test_fails_when_ansible_cannot_be_installed(builder: ScratchBuilder, tmp_path: Path) -> None:
    builder.without("ansible-playbook")
    builder.set_os("rhel")
    run = bake(builder, **ansible_env(ansible_bundle(tmp_path / "ansible")))
    assert_failed_with(run, "ansible-playbook is missing and could not be installed")


@pytest.mark.parametrize("playbook", ["../site.yml", "/etc/site.yml", "-e@x.yml", "a;reboot"])
def test_an_invalid_playbook_is_rejected_before_any_docker_call(
    builder: ScratchBuilder, tmp_path: Path, playbook: str
) -> None:
    env = {**ansible_env(ansible_bundle(tmp_path / "ansible")), "SSM_AnsiblePlaybook": playbook}
    run = bake(builder, **env)
    assert_failed_with(run, f"invalid playbook in SSM_AnsiblePlaybook: '{playbook}'")
    assert not run.calls_to("docker")


def test_a_playbook_missing_from_the_bundle_is_named(
    builder: ScratchBuilder, tmp_path: Path
) -> None:
    env = {**ansible_env(ansible_bundle(tmp_path / "ansible")), "SSM_AnsiblePlaybook": "deploy.yml"}
    run = bake(builder, **env)
    assert_failed_with(run, "the Ansible bundle holds no playbook 'deploy.yml'")
    assert not run.calls_to("ansible-playbook")
    assert not list(builder.path("tmp").iterdir())


# ---- registries and credentials -------------------------------------------------------------


def test_credentials_are_in_place_for_the_pulls_and_removed_afterwards(
    builder: ScratchBuilder,
) -> None:
    run = bake(builder)
    assert_succeeded(run)
    get_parameter = run.calls_to("aws")[0]
    assert get_parameter[:2] == ["ssm", "get-parameter"]
    assert "--with-decryption" in get_parameter
    assert get_parameter[get_parameter.index("--name") + 1] == "/tfbake/registry-auths"
    pulls = [entry for entry in run.entries if entry["argv"][:2] == ["docker", "pull"]]
    for pull in pulls:
        config = json.loads(str(pull["credentials"]))
        assert (
            config["auths"]["registry.example.com:5000"]
            == json.loads(AUTHS)["registry.example.com:5000"]
        )
        assert ECR_HOST in config["auths"]
    assert not builder.path("root/.docker/config.json").exists()
    assert not builder.path(CREDENTIAL_HELPER_STATE).exists()
    assert SECRET not in run.output


def test_secrets_stay_out_of_xtrace_output(builder: ScratchBuilder) -> None:
    # Someone debugging a bake with xtrace on must not leak the credentials into the output.
    run = bake(builder, SHELLOPTS="xtrace")
    assert_succeeded(run)
    assert "+ " in run.output
    assert SECRET not in run.output
    assert "ecr-password-from-instance-role" not in run.output


def test_credentials_are_private_in_memory_and_gone_before_provision(
    builder: ScratchBuilder,
) -> None:
    # A provision command (and so an Ansible playbook) runs after the credentials are gone.
    run = bake(
        builder,
        SSM_Provision=encode_provision(
            'printf "credentials:%s\\n" "$(test -e "$DOCKER_CONFIG" && echo seen || echo gone)"'
        ),
    )
    assert_succeeded(run)
    assert "credentials:gone" in run.output
    pulls = [entry for entry in run.entries if entry["argv"][:2] == ["docker", "pull"]]
    # Under /run, a tmpfs on a builder: never on the volume that becomes the image.
    assert {pull["credentials_path"] for pull in pulls} == {
        str(builder.path("run/tfbake-docker/config.json"))
    }
    assert {pull["credentials_mode"] for pull in pulls} == {"0o600"}
    assert not builder.path("run/tfbake-docker").exists()


def test_a_failed_read_of_the_credentials_stops_the_bake(builder: ScratchBuilder) -> None:
    # Once a subshell swallowed this failure and the bake went on with `{"auths": }`.
    run = bake(builder, TFBAKE_TEST_FAIL_AWS="ssm")
    assert_failed_with(run, "cannot read registry credentials from SSM parameter")
    assert not [entry for entry in run.entries if entry["argv"][:2] == ["docker", "pull"]]


def test_a_provision_command_starting_with_a_dash_runs_as_a_command(
    builder: ScratchBuilder,
) -> None:
    run = bake(builder, SSM_Provision=encode_provision("-x-not-an-option"))
    assert_failed_with(run, "provision command 1 of 1 failed (exit status 127)")
    assert "-x-not-an-option: command not found" in run.output


def test_credentials_are_removed_when_the_bake_fails(builder: ScratchBuilder) -> None:
    run = bake(builder, TFBAKE_TEST_FAIL_PULL=PINNED[0])
    assert run.returncode != 0
    assert not builder.path("root/.docker/config.json").exists()
    assert not builder.path(CREDENTIAL_HELPER_STATE).exists()
    assert "registry credentials removed" in run.output


def test_ecr_login_uses_the_instance_role_and_the_registry_region(
    builder: ScratchBuilder,
) -> None:
    run = bake(builder, SSM_RegistryCredentialsParameter="")
    assert_succeeded(run)
    assert ["ecr", "get-login-password", "--region", "us-east-2"] in run.calls_to("aws")
    logins = [entry for entry in run.entries if entry["argv"][:2] == ["docker", "login"]]
    assert [entry["argv"][2:] for entry in logins] == [
        ["--username", "AWS", "--password-stdin", ECR_HOST]
    ]
    assert logins[0]["stdin"] == "ecr-password-from-instance-role"


def test_no_registry_settings_means_no_aws_calls(builder: ScratchBuilder) -> None:
    run = bake(builder, SSM_RegistryCredentialsParameter="", SSM_EcrRegistries="")
    assert_succeeded(run)
    assert not run.calls_to("aws")
    assert not [call for call in run.calls_to("docker") if call[0] == "login"]


def test_an_invalid_ecr_host_is_rejected(builder: ScratchBuilder) -> None:
    run = bake(builder, SSM_EcrRegistries="evil.example.com")
    assert_failed_with(run, "invalid ECR registry host in SSM_EcrRegistries: 'evil.example.com'")
    assert not run.calls_to("aws")


# ---- Docker and the SSM agent ---------------------------------------------------------------


def test_installs_docker_with_dnf_on_amazon_linux(builder: ScratchBuilder) -> None:
    builder.without("docker")
    builder.set_os("amazon")
    run = bake(builder)
    assert_succeeded(run)
    # Debian's docker.io install runs for real in tests/real; this is the path it cannot reach.
    assert installs(run, "dnf") == [
        ["install", "-y", "-q", "--setopt=install_weak_deps=False", "docker"]
    ]
    assert ["clean", "all", "-q"] in run.calls_to("dnf")
    assert not installs(run, "apt-get")


@pytest.mark.parametrize("os_name", ["debian", "amazon"])
def test_does_not_reinstall_docker_when_present(builder: ScratchBuilder, os_name: str) -> None:
    builder.set_os(os_name)
    run = bake(builder)
    assert_succeeded(run)
    assert not installs(run, "apt-get")
    assert not installs(run, "dnf")


def test_an_unsupported_os_without_docker_fails_naming_it(builder: ScratchBuilder) -> None:
    builder.without("docker")
    builder.set_os("rhel")
    run = bake(builder)
    assert_failed_with(run, "the OS 'rhel' is not supported")


@pytest.mark.parametrize("agent_unit", [SSM_AGENT_UNIT, SNAP_SSM_AGENT_UNIT])
def test_enables_docker_and_the_ssm_agent_at_boot(builder: ScratchBuilder, agent_unit: str) -> None:
    run = bake(builder, TFBAKE_TEST_UNITS=f"docker.service docker.socket {agent_unit}")
    assert_succeeded(run)
    systemctl = run.calls_to("systemctl")
    assert ["enable", "--now", "docker.service"] in systemctl
    assert ["enable", agent_unit] in systemctl


DOCKERD_REASON = (
    "unable to configure the Docker daemon with file /etc/docker/daemon.json: "
    "invalid character 'x' looking for beginning of value"
)


def _journal(unit: str, program: str, *said: str) -> list[list[str]]:
    return [
        *([program, f"early line {n}"] for n in range(30)),
        *([program, line] for line in said),
        ["systemd", f"{unit}: Main process exited, code=exited, status=1/FAILURE"],
        ["systemd", f"Failed to start {unit} - its description."],
    ]


def test_a_docker_that_will_not_start_is_explained_by_its_journal(
    builder: ScratchBuilder,
) -> None:
    journal = {"docker.service": _journal("docker.service", "dockerd", DOCKERD_REASON)}
    run = bake(
        builder,
        TFBAKE_TEST_FAILED_UNITS="docker.service",
        TFBAKE_TEST_JOURNAL=json.dumps(journal),
    )
    assert_failed_with(run, f"docker.service did not start: {DOCKERD_REASON}")
    shown = run.output.split("the last lines of its journal:", 1)[1]
    assert "Main process exited" in shown
    # Bounded: the journal's last 20 lines, not all of it.
    assert "early line 11" not in shown and "early line 29" in shown
    assert not run.calls_to("docker")


def test_a_containerd_that_will_not_start_is_named_before_docker(
    builder: ScratchBuilder,
) -> None:
    journal = {
        "containerd.service": _journal(
            "containerd.service", "containerd", "failed to load TOML: /etc/containerd/config.toml"
        ),
        "docker.service": _journal("docker.service", "dockerd", "dependency failed"),
    }
    run = bake(
        builder,
        TFBAKE_TEST_FAILED_UNITS="docker.service containerd.service",
        TFBAKE_TEST_JOURNAL=json.dumps(journal),
    )
    assert_failed_with(
        run, "containerd.service did not start: failed to load TOML: /etc/containerd/config.toml"
    )


def test_a_unit_journal_line_is_cut_to_a_bounded_width(builder: ScratchBuilder) -> None:
    journal = {"docker.service": _journal("docker.service", "dockerd", "x" * 5000)}
    run = bake(
        builder,
        TFBAKE_TEST_FAILED_UNITS="docker.service",
        TFBAKE_TEST_JOURNAL=json.dumps(journal),
    )
    assert_failed_with(run, "docker.service did not start: " + "x" * 100)
    assert "x" * 301 not in run.output


def test_fails_when_no_ssm_agent_unit_exists(builder: ScratchBuilder) -> None:
    run = bake(builder, TFBAKE_TEST_UNITS="docker.service")
    assert_failed_with(run, "no SSM agent unit found")


# ---- per-host identity ----------------------------------------------------------------------


def test_removes_per_host_identity(builder: ScratchBuilder) -> None:
    run = bake(builder)
    assert_succeeded(run)
    for relative in IDENTITY_FILES:
        assert not builder.path(relative).exists(), relative
    machine_id = builder.path(MACHINE_ID)
    assert machine_id.exists()
    assert machine_id.read_text() == ""
    systemctl = run.calls_to("systemctl")
    assert ["stop", "docker.service", "docker.socket"] in systemctl
    # It waits for the builder's first boot to finish, then clears cloud-init's state.
    assert run.calls_to("cloud-init") == [["status", "--wait"], ["clean", "--logs"]]
    assert run.calls_to("sync") == [[]]
    assert run.calls[-1] == ["sync"]


ECS_STATE = ("var/lib/ecs/data/agent.db", "var/lib/ecs/data/ecs_agent_data.json")
ECS_CONFIG = "etc/ecs/ecs.config"


@pytest.mark.parametrize("agent_running", [True, False], ids=["agent-unit", "no-agent-unit"])
def test_removes_the_ecs_agents_state_and_keeps_its_configuration(
    builder: ScratchBuilder, agent_running: bool
) -> None:
    for relative in ECS_STATE:
        builder.path(relative).parent.mkdir(parents=True, exist_ok=True)
        builder.path(relative).write_text('{"ContainerInstanceArn": "of the builder"}')
    builder.path(ECS_CONFIG).parent.mkdir(parents=True, exist_ok=True)
    builder.path(ECS_CONFIG).write_text("ECS_IMAGE_PULL_BEHAVIOR=prefer-cached\n")
    units = f"docker.service docker.socket {SSM_AGENT_UNIT}" + (" ecs.service" * agent_running)
    run = bake(builder, TFBAKE_TEST_UNITS=units)
    assert_succeeded(run)
    assert list(builder.path("var/lib/ecs/data").iterdir()) == []
    assert builder.path(ECS_CONFIG).read_text() == "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached\n"
    stops = [call for call in run.calls_to("systemctl") if call[:1] == ["stop"]]
    # The agent (a container on ECS-optimized AMIs) stops before Docker does.
    expected = [["stop", "ecs.service"]] if agent_running else []
    assert stops[: len(expected)] == expected
    assert ["stop", "docker.service", "docker.socket"] in stops


def test_a_base_without_the_ecs_agent_is_left_as_it_is(builder: ScratchBuilder) -> None:
    run = bake(builder)
    assert_succeeded(run)
    assert not builder.path("var/lib/ecs").exists()
    assert "ECS agent state removed" not in run.output


def test_clears_cloud_init_state_without_the_cloud_init_command(builder: ScratchBuilder) -> None:
    builder.without("cloud-init")
    run = bake(builder)
    assert_succeeded(run)
    for relative in CLOUD_INIT_STATE:
        assert not builder.path(relative).exists(), relative
    assert not builder.path("var/lib/cloud/instance").is_symlink()


def test_ssh_host_keys_are_made_at_first_boot_when_cloud_init_is_absent(
    builder: ScratchBuilder,
) -> None:
    unit_name = "tfbake-ssh-host-keys.service"
    builder.without("cloud-init")
    run = bake(builder)
    assert_succeeded(run)
    unit = builder.path(f"etc/systemd/system/{unit_name}").read_text()
    assert "ExecStart=/usr/bin/ssh-keygen -A" in unit
    assert "Before=ssh.service sshd.service" in unit
    assert ["enable", unit_name] in run.calls_to("systemctl")


def test_cloud_init_makes_the_ssh_host_keys(builder: ScratchBuilder) -> None:
    run = bake(builder)
    assert_succeeded(run)
    assert not builder.path("etc/systemd/system/tfbake-ssh-host-keys.service").exists()


def test_removes_ssm_agent_state_at_shutdown_and_keeps_the_agent(builder: ScratchBuilder) -> None:
    run = bake(builder)
    assert_succeeded(run)
    unit_name = "tfbake-shutdown-cleanup.service"
    unit_file = builder.path(f"etc/systemd/system/{unit_name}")
    unit = unit_file.read_text()
    # Stopped after the agent (stop order is the reverse of Before=), so the command running
    # the recipe keeps its state until it has reported.
    assert (
        f"Before=shutdown.target {SSM_AGENT_UNIT} {SNAP_SSM_AGENT_UNIT} "
        "systemd-random-seed.service systemd-update-utmp.service"
    ) in unit
    assert "DefaultDependencies=no" in unit
    assert ["start", unit_name] in run.calls_to("systemctl")
    # The state is still there while the command runs.
    assert builder.path(SSM_AGENT_STATE[0]).exists()

    (exec_stop,) = [line for line in unit.splitlines() if line.startswith("ExecStop=")]
    subprocess.run(shlex.split(exec_stop.removeprefix("ExecStop=")), check=True)

    for relative in SSM_AGENT_STATE:
        assert not builder.path(relative).exists(), relative
    for relative in SSM_AGENT_INSTALLATION:
        assert builder.path(relative).exists(), relative
    assert not unit_file.exists()


# ---- the script as a whole ------------------------------------------------------------------


def test_a_second_run_succeeds_too(builder: ScratchBuilder) -> None:
    first = bake(builder)
    second = bake(builder)
    assert_succeeded(first)
    assert_succeeded(second)
    # Pulls run concurrently, so their order in the log varies.
    assert sorted(second.calls_to("docker")) == sorted(first.calls_to("docker"))
    assert builder.path(MACHINE_ID).read_text() == ""
    assert "tfbake: done" in second.output


def test_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed: apt-get install shellcheck"
    result = subprocess.run(
        [shellcheck, "-x", str(RECIPE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_contains_no_ssm_placeholders() -> None:
    # SSM would substitute {{ ... }} in the document text; inputs come only as environment.
    assert "{{" not in RECIPE.read_text()


def test_the_output_aws_keeps_ends_with_why_a_long_bake_failed(builder: ScratchBuilder) -> None:
    # Run Command keeps the first 24,000 characters of stdout; the failure is printed last.
    noisy = "for ((i = 0; i < 2000; i++)); do echo progress line $i of a provision; done; exit 3"
    run = bake(builder, SSM_Provision=encode_provision(noisy))

    kept = run.output[:24_000]
    assert run.returncode != 0
    assert len(run.output) < 24_000, "the recipe bounds what it prints"
    assert "tfbake: summary: tfbake: error: provision command 1 of 1 failed" in kept
    assert "tfbake: summary: last step: provision command 1 of 1" in kept
    assert "progress line 1999 of a provision" in kept  # only the summary has the end


def test_output_that_goes_to_cloudwatch_is_left_whole(builder: ScratchBuilder) -> None:
    noisy = "for ((i = 0; i < 2000; i++)); do echo progress line $i of a provision; done; exit 3"
    run = bake(builder, SSM_Provision=encode_provision(noisy), SSM_FullOutput="true")

    assert "progress line 1999 of a provision" in run.output
    assert len(run.output) > 24_000
    assert "tfbake: summary:" not in run.output
