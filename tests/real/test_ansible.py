"""The seed's own tool for real: an Ansible play on a real builder, with ansible-core installed by
the recipe from the base's packages. What the play leaves is in the AMI, the play can use the
images already pulled, and a failing task fails the bake quoting the task's own message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.real.conftest import DEBIAN_WITH_DOCKER, bake_spec, ensure
from tests.support.images import push_busybox_image
from tests.support.real_sandbox import RealSandbox
from tests.support.registry import RegistryServer

PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Inspect a pulled image
      ansible.builtin.command: docker image inspect {{ image }}
      register: inspected
      changed_when: false

    - name: Refuse when asked to
      ansible.builtin.fail:
        msg: "the play refused: {{ refusal }}"
      when: refusal | length > 0

    - name: Leave a file in the image
      ansible.builtin.copy:
        dest: /etc/tfbake-play
        content: "{{ (inspected.stdout | from_json)[0].Id }}\\n"
        mode: "0644"
"""


def _play(tmp_path: Path, image: str, refusal: str = "") -> dict[str, Any]:
    directory = tmp_path / "ansible"
    directory.mkdir()
    (directory / "site.yml").write_text(PLAY)
    return {
        "directory": str(directory),
        "playbook": "site.yml",
        "files": ["site.yml"],
        "extra_vars": {"image": image, "refusal": refusal},
    }


def _snapshot(sandbox: RealSandbox, ami_id: str) -> Path:
    (image,) = sandbox.client("ec2").describe_images(ImageIds=[ami_id])["Images"]
    return sandbox.state_dir / "snapshots" / image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]


def test_a_play_uses_the_pulled_images_and_leaves_its_file_in_the_ami(
    real_sandbox: RealSandbox, real_registry: RegistryServer, tmp_path: Path
) -> None:
    image = push_busybox_image(real_registry, "played", "1")
    reference = image.reference(real_registry.host)
    spec = bake_spec(
        tmp_path,
        "real-ansible",
        [reference],
        base_ami=DEBIAN_WITH_DOCKER,
        ansible=_play(tmp_path, reference),
    )
    result = ensure(real_sandbox, spec)
    assert result.code == 0, result.stderr[-3000:]
    root = _snapshot(real_sandbox, json.loads(result.stdout)["ami_id"])
    assert (root / "etc/tfbake-play").read_text().strip().startswith("sha256:")
    # Ansible itself is on the image (the base's package), its play's files are not.
    assert (root / "usr/bin/ansible-playbook").exists()
    assert not list((root / "tmp").glob("tfbake-ansible.*"))


def test_a_failing_task_fails_the_bake_quoting_its_message(
    real_sandbox: RealSandbox, real_registry: RegistryServer, tmp_path: Path
) -> None:
    image = push_busybox_image(real_registry, "refused", "1")
    reference = image.reference(real_registry.host)
    spec = bake_spec(
        tmp_path,
        "real-ansible-refuses",
        [reference],
        base_ami=DEBIAN_WITH_DOCKER,
        ansible=_play(tmp_path, reference, refusal="not on a Tuesday"),
    )
    result = ensure(real_sandbox, spec)
    assert result.code == 4, result.stderr[-3000:]
    assert "failed at step RunRecipe" in result.stderr
    report = result.stderr.split("recipe output (last lines):", 1)[1]
    expected = (
        "Ansible playbook site.yml failed (exit status 2) at task [Refuse when asked to]: "
        '{"changed": false, "msg": "the play refused: not on a Tuesday"}'
    )
    assert f"tfbake: error: {expected}" in report, report
