"""A launched instance's root: image layers hard-linked from the AMI's tree, the rest copied."""

from __future__ import annotations

from pathlib import Path

from tfbake.sandbox.machines.fleet import _copy_tree

LAYERDB = "var/lib/docker/image/overlay2/layerdb/sha256"


def test_image_layers_are_shared_and_everything_else_is_a_copy(tmp_path: Path) -> None:
    source = tmp_path / "snapshot"
    layer = source / "var/lib/docker/overlay2/0123abcd/diff/usr/bin/app"
    layer.parent.mkdir(parents=True)
    layer.write_text("layer")
    (source / LAYERDB / "sha256-of-layer").mkdir(parents=True)
    (source / LAYERDB / "sha256-of-layer/cache-id").write_text("0123abcd")
    config = source / "etc/hostname"
    config.parent.mkdir(parents=True)
    config.write_text("builder")
    config.chmod(0o640)

    target = tmp_path / "instance"
    _copy_tree(source, target)

    copied_layer = target / "var/lib/docker/overlay2/0123abcd/diff/usr/bin/app"
    assert copied_layer.stat().st_ino == layer.stat().st_ino
    copied_config = target / "etc/hostname"
    assert copied_config.read_text() == "builder"
    assert copied_config.stat().st_ino != config.stat().st_ino
    assert copied_config.stat().st_mode & 0o777 == 0o640
    copied_config.write_text("instance")  # the instance's own files change only there
    assert config.read_text() == "builder"
