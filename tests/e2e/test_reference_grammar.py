"""The module's copy of Docker's reference grammar agrees with tfbake's, case by case.

modules/baked-ami checks image references at plan so that the error names the variable; tfbake
checks them again before any use. Both must accept and refuse the same references, so the same
cases go to Terraform's regex engine (a real `terraform console` on the module) and to
`parse_reference`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.terraform import Root, stage
from tfbake.model.errors import InvalidReference
from tfbake.model.reference import parse_reference

DIGEST = "sha256:" + "a" * 64
ACCEPTED = [
    "nginx",
    "nginx:1.27",
    "library/nginx",
    "docker.io/library/nginx:latest",
    f"nginx@{DIGEST}",
    f"ghcr.io/acme/api:v1@{DIGEST}",
    "localhost:5000/app",
    "127.0.0.1:5000/a/b/c",
    "registry.example.com/x__y",
    "a-b---c",
    "a_b/c.d",
    "[::1]:5000/app",
    "[fe80::1]/app",
    "Registry.Example/app",
    f"app@sha512:{'b' * 128}",
    "app:" + "t" * 128,
    "x" * 255,
    "library/" + "a" * 64,
]
REFUSED = [
    "",
    "UPPER",
    "acme/API",
    "app:",
    "app::1",
    ":tag",
    "app:-x",
    "app:" + "t" * 129,
    "app@sha256:abc",
    f"app@sha256:{'A' * 64}",
    f"app@sha384:{'a' * 96}",
    "app;rm -rf /",
    "app name",
    "$(id)",
    "-app",
    "app-",
    "a..b",
    "a___b",
    "a/",
    "/a",
    "host:port/app",
    ".host/app",
    "host-/app",
    "x" * 256,
    "registry.example.com/" + "y" * 240,
    "a" * 64,
    "docker.io/" + "a" * 64 + ":1",
]


def python_accepts(reference: str) -> bool:
    try:
        parse_reference(reference)
    except InvalidReference:
        return False
    return True


def terraform_refuses(terraform_bin: str, tmp_path: Path, references: list[str]) -> list[str]:
    root = Root(stage(tmp_path, "modules/baked-ami"), terraform_bin)
    root.init().check()
    variables = root.directory / "cases.tfvars.json"
    variables.write_text(
        json.dumps({"name": "grammar", "images": references, "base_ami": "ami-12345678"})
    )
    console = subprocess.run(
        [terraform_bin, "console", f"-var-file={variables}"],
        input="jsonencode(local.invalid_images)\n",
        capture_output=True,
        text=True,
        cwd=root.directory,
        timeout=120,
        check=False,
    )
    assert console.returncode == 0, console.stderr
    return json.loads(json.loads(console.stdout.strip()))


def test_the_cases_are_what_tfbake_says() -> None:
    assert [ref for ref in ACCEPTED if not python_accepts(ref)] == []
    assert [ref for ref in REFUSED if python_accepts(ref)] == []


def test_terraform_accepts_and_refuses_the_same_references(
    terraform_bin: str, tmp_path: Path
) -> None:
    refused = terraform_refuses(terraform_bin, tmp_path, ACCEPTED + REFUSED)
    assert [ref for ref in ACCEPTED if ref in refused] == []
    assert [ref for ref in REFUSED if ref not in refused] == []
