"""The recipe with `runtime = "containerd"`: images go into a containerd namespace with ctr.

The recipe runs for real with bash under a scratch root; ctr, systemctl, the package managers
and aws are recording stand-ins (tests/support/scratch_root.py). tests/real/test_containerd.py
bakes with the real containerd.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.bake.test_recipe import (
    APP,
    ECR_HOST,
    IMAGES,
    PINNED,
    SECRET,
    assert_failed_with,
    assert_succeeded,
    bake,
    encode_provision,
)
from tests.support.scratch_root import RecipeRun, ScratchBuilder, make_scratch_builder

TAGGED = ["docker.io/library/nginx:1.27", f"{ECR_HOST}/team/app:v1.2.3"]
ECR_AUTH = base64.b64encode(b"AWS:ecr-password-from-instance-role").decode()


@pytest.fixture
def builder(tmp_path: Path) -> ScratchBuilder:
    return make_scratch_builder(tmp_path)


def bake_containerd(builder: ScratchBuilder, **env: str) -> RecipeRun:
    return bake(builder, SSM_Runtime="containerd", **env)


def ctr_calls(run: RecipeRun, *command: str) -> list[dict[str, object]]:
    """The ctr calls `ctr --namespace NS <command...>`, as recorded."""
    return [
        entry
        for entry in run.entries
        if entry["argv"][0] == "ctr" and list(entry["argv"][3 : 3 + len(command)]) == list(command)
    ]


def test_pulls_every_image_by_digest_into_the_kubelets_namespace(builder: ScratchBuilder) -> None:
    run = bake_containerd(builder)
    assert_succeeded(run)
    pulls = ctr_calls(run, "images", "pull")
    assert sorted(str(p["argv"][-1]) for p in pulls) == sorted(PINNED)
    assert {p["namespace"] for p in pulls} == {"k8s.io"}
    # Pinned, so the kubelet's image garbage collection passes over them.
    assert all(p["argv"][-3:-1] == ["--label", "io.cri-containerd.pinned=pinned"] for p in pulls)
    # Docker is on this base, but neither pulls nor starts.
    assert not [c for c in run.calls_to("docker") if c[:1] in (["pull"], ["tag"])]
    assert ["enable", "--now", "containerd.service"] in run.calls_to("systemctl")
    assert ["enable", "--now", "docker.service"] not in run.calls_to("systemctl")
    assert "tfbake: containerd enabled at boot" in run.output


def test_names_each_image_by_its_tag_and_verifies_both_names(builder: ScratchBuilder) -> None:
    run = bake_containerd(builder)
    assert_succeeded(run)
    tagged = [entry["argv"][-2:] for entry in ctr_calls(run, "images", "tag")]
    assert tagged == [[PINNED[0], TAGGED[0]], [PINNED[1], TAGGED[1]]]
    checked = {str(entry["argv"][-1]) for entry in ctr_calls(run, "images", "check")}
    assert checked == {f"name=={ref}" for ref in [*PINNED, *TAGGED]}
    assert "tfbake: verified 3 images" in run.output


def test_the_namespace_is_the_image_sets(builder: ScratchBuilder) -> None:
    run = bake_containerd(builder, SSM_ContainerdNamespace="baked")
    assert_succeeded(run)
    assert {e["namespace"] for e in ctr_calls(run, "images", "pull")} == {"baked"}
    assert {e["namespace"] for e in ctr_calls(run, "images", "check")} == {"baked"}


def test_a_tag_that_names_another_digest_fails_verification(builder: ScratchBuilder) -> None:
    run = bake_containerd(builder, TFBAKE_TEST_MOVE_TAG=TAGGED[1])
    assert_failed_with(run, "verify failed", f"tag {TAGGED[1]} is at 'sha256:{'0' * 64}'")


def test_a_failed_pull_fails_the_bake_naming_the_image(builder: ScratchBuilder) -> None:
    run = bake_containerd(builder, TFBAKE_TEST_FAIL_PULL=PINNED[1])
    assert_failed_with(run, "1 of 3 image pulls failed", APP)
    assert not ctr_calls(run, "images", "tag")


def test_credentials_reach_ctr_as_files_on_run_never_as_arguments(
    builder: ScratchBuilder,
) -> None:
    run = bake_containerd(
        builder,
        SSM_Provision=encode_provision(
            'test -e "$TFBAKE_ROOT/run/tfbake-containerd-hosts" && echo hosts:seen '
            "|| echo hosts:gone"
        ),
    )
    assert_succeeded(run)
    (pull, *_) = ctr_calls(run, "images", "pull")
    hosts = pull["hosts"]
    assert isinstance(hosts, dict)
    assert sorted(hosts) == [f"{ECR_HOST}/hosts.toml", "registry.example.com:5000/hosts.toml"]
    private = hosts["registry.example.com:5000/hosts.toml"]
    assert 'server = "https://registry.example.com:5000"' in private
    assert f'Authorization = "Basic {SECRET}"' in private
    assert f'Authorization = "Basic {ECR_AUTH}"' in hosts[f"{ECR_HOST}/hosts.toml"]
    hosts_dir = builder.path("run/tfbake-containerd-hosts")
    assert pull["argv"][5:7] == ["--hosts-dir", str(hosts_dir)]
    # No secret in any program's arguments, nor in the output; the files are gone before
    # the provision commands run.
    for entry in run.entries:
        argv = " ".join(str(a) for a in entry["argv"])
        assert SECRET not in argv and "ecr-password" not in argv and ECR_AUTH not in argv
    assert SECRET not in run.output and ECR_AUTH not in run.output
    assert "hosts:gone" in run.output
    assert not hosts_dir.exists()


def test_a_username_and_password_entry_becomes_a_basic_header(builder: ScratchBuilder) -> None:
    # Two keys of one registry (Docker's index and its API host): the first one counts.
    auths = {
        "https://index.docker.io/v1/": {"username": "ops", "password": "s3cret-value"},
        "registry-1.docker.io": {"auth": "b3RoZXI6b3RoZXI="},
    }
    run = bake_containerd(builder, TFBAKE_TEST_PARAMETER_VALUE=json.dumps(auths))
    assert_succeeded(run)
    (pull, *_) = ctr_calls(run, "images", "pull")
    hosts = pull["hosts"]
    assert isinstance(hosts, dict)
    # Docker Hub's key in a Docker config is its index; ctr names the registry docker.io.
    assert 'server = "https://registry-1.docker.io"' in hosts["docker.io/hosts.toml"]
    assert f'Authorization = "Basic {SECRET}"' in hosts["docker.io/hosts.toml"]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('["not", "an", "object"]', "is not a JSON object of registries"),
        ('{"https://../etc": {"auth": "eA=="}}', "is not a host[:port]"),
        ('{"registry.example.com": {"auth": "x\\"\\n[host]"}}', "auth that is not base64"),
    ],
)
def test_credentials_that_are_not_docker_auths_fail_the_bake(
    builder: ScratchBuilder, value: str, problem: str
) -> None:
    run = bake_containerd(builder, TFBAKE_TEST_PARAMETER_VALUE=value)
    assert_failed_with(run, "cannot read the registry credentials for containerd")
    assert problem in run.output
    assert not ctr_calls(run, "images", "pull")


def test_installs_containerd_where_ctr_is_missing(builder: ScratchBuilder) -> None:
    builder.without("ctr")
    builder.without("docker")
    run = bake_containerd(builder)
    assert_succeeded(run)
    installs = [call for call in run.calls_to("apt-get") if "install" in call]
    assert installs and installs[0][-1] == "containerd"
    assert "tfbake: timed install containerd" in run.output
    assert not run.calls_to("docker")


def test_removes_containerds_per_host_state_and_keeps_its_images(
    builder: ScratchBuilder,
) -> None:
    cri = "var/lib/containerd/io.containerd.grpc.v1.cri"
    kept = "var/lib/containerd/io.containerd.content.v1.content/blobs/sha256/ab"
    for relative in (f"{cri}/sandboxes/pod-1/sandbox.json", f"{cri}/containers/c-1/status",
                     "var/lib/containerd/tmpmounts/m-1/x", kept):  # fmt: skip
        builder.path(relative).parent.mkdir(parents=True, exist_ok=True)
        builder.path(relative).write_text("state\n")
    containers = {"k8s.io": ["pod-1", "c-1"], "default": ["left-by-base"]}
    run = bake_containerd(builder, TFBAKE_TEST_CONTAINERS=json.dumps(containers))
    assert_succeeded(run)
    deleted = {(e["namespace"], e["argv"][-1]) for e in ctr_calls(run, "containers", "delete")}
    assert deleted == {("k8s.io", "pod-1"), ("k8s.io", "c-1"), ("default", "left-by-base")}
    stops = run.calls_to("systemctl")
    assert ["stop", "containerd.service"] in stops
    # Images are removed by nobody: only their own store is kept.
    assert not ctr_calls(run, "images", "remove")
    assert not builder.path(f"{cri}/sandboxes/pod-1").exists()
    assert not builder.path(f"{cri}/containers/c-1").exists()
    assert not builder.path("var/lib/containerd/tmpmounts/m-1").exists()
    assert builder.path(kept).exists()
    # Docker is on this base: its identity goes as well.
    assert not builder.path("etc/docker/key.json").exists()


def test_a_docker_bake_leaves_containerd_alone(builder: ScratchBuilder) -> None:
    run = bake(builder)
    assert_succeeded(run)
    assert not run.calls_to("ctr")
    assert ["stop", "containerd.service"] not in run.calls_to("systemctl")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SSM_Runtime": "podman"}, "SSM_Runtime is not docker or containerd: 'podman'"),
        (
            {"SSM_Runtime": "containerd", "SSM_ContainerdNamespace": "k8s..io"},
            "SSM_ContainerdNamespace is not a containerd namespace: 'k8s..io'",
        ),
        (
            {"SSM_Runtime": "containerd", "SSM_ContainerdNamespace": "$(reboot)"},
            "SSM_ContainerdNamespace is not a containerd namespace: '$(reboot)'",
        ),
    ],
)
def test_an_invalid_runtime_is_refused_before_anything_runs(
    builder: ScratchBuilder, env: dict[str, str], message: str
) -> None:
    run = builder.run(SSM_Images=IMAGES, **env)
    assert_failed_with(run, message)
    assert not run.calls_to("ctr") and not run.calls_to("docker")


def test_a_failed_ecr_login_fails_the_bake_naming_the_registry(builder: ScratchBuilder) -> None:
    run = bake_containerd(builder, TFBAKE_TEST_FAIL_AWS="ecr")
    assert_failed_with(run, f"cannot log in to ECR registry {ECR_HOST}")
    assert not ctr_calls(run, "images", "pull")
    assert not builder.path("run/tfbake-containerd-hosts").exists()
