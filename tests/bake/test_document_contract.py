"""The documents held to AWS's contract: every allowedPattern under both of SSM's regex engines
(Java's at the API, Go's RE2 on the agent), at the full capacity of its parameter; the grammar
the flat patterns leave out, held alike by tfbake and the recipe; the sandbox checking patterns
as the two engines would."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import re2
import yaml
from botocore.exceptions import ClientError

from tests.support.sandbox_helpers import clients
from tests.support.scratch_root import make_scratch_builder
from tfbake.bake import documents
from tfbake.model import patterns
from tfbake.model.chunks import ANSIBLE_BUNDLE, CHUNKED, IMAGES, PROVISION, SLICE_CHARACTERS
from tfbake.model.errors import InvalidReference
from tfbake.model.reference import check_pinned_form
from tfbake.sandbox import Sandbox

CHECKER = Path(__file__).parents[1] / "support" / "RegexChecker.java"
DIGEST = "sha256:" + "0123456789abcdef" * 4
ECR_FIPS = "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com"


def _long_reference(index: int) -> str:
    """A long pinned reference that uses every part of the grammar."""
    repository = "/".join(f"team-{index:04d}__x.y--z" for _ in range(4))
    return f"registry-{index:04d}.example.com:5000/{repository}:v1.2.3-rc_{index}@{DIGEST}"


def _images_at_capacity(capacity: int) -> str:
    references: list[str] = []
    # Room is kept for a last reference, sized to fill the capacity to its last character.
    while len(" ".join([*references, _long_reference(len(references))])) <= capacity - 100:
        references.append(_long_reference(len(references)))
    text = " ".join(references) + " r.io/"
    return text + "a" * (capacity - len(text) - len(DIGEST) - 1) + "@" + DIGEST


def _base64_at(characters: int) -> str:
    return base64.b64encode(bytes(range(256)) * (characters // 4 * 3 // 256 + 1)).decode()[
        :characters
    ]


IMAGES_FULL = _images_at_capacity(IMAGES.capacity)
# Each parameter's longest valid value: a joined value at its slots' capacity, any other value
# at the 512 characters StartAutomationExecution allows (or the most its grammar allows).
FULL: Mapping[str, str] = {
    "Images": IMAGES_FULL,
    "Provision": _base64_at(PROVISION.capacity),
    "AnsibleBundle": _base64_at(ANSIBLE_BUNDLE.capacity),
    "RegistryCredentialsParameter": "/tfbake/" + "registry-auths." * 33,
    "EcrRegistries": " ".join([ECR_FIPS] * 9),
    "Region": "us-gov-west-1",
    "AnsiblePlaybook": "/".join(["r" * 15] * 32),
    "AnsibleExtraVars": json.dumps({"k": "v" * 500}),
    "AutomationAssumeRole": "arn:aws-us-gov:iam::123456789012:role/" + "p/" * 236,
    "BaseAmiId": "ami-0123456789abcdef0",
    "InstanceType": "u-24tb1.112xlarge",
    "SubnetId": "subnet-0123456789abcdef0",
    "InstanceProfileName": "p" * 128,
    "KmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/" + "k" * 473,
    "ImageName": "tfbake-" + "n" * 121,
    "Fingerprint": "f" * 64,
    "FingerprintScheme": "tfbake.fingerprint/" + "1" * 45,
    "SetName": "s" * 64,
    "RecipeLogGroup": "/tfbake/" + "g" * 504,
    "FullOutput": "false",
    "Runtime": "containerd",
    "ContainerdNamespace": "n" * 76,
}
SLOT_VALUES = {chunk.name: FULL[chunk.name][:SLICE_CHARACTERS] for chunk in CHUNKED}


def _declared() -> list[tuple[str, str, dict[str, Any]]]:
    """(document, parameter, declaration) of every parameter with an allowedPattern."""
    found = []
    for document, content in (
        ("runbook", documents.runbook_content()),
        ("recipe", documents.recipe_command_content()),
    ):
        for name, spec in yaml.safe_load(content)["parameters"].items():
            if "allowedPattern" in spec:
                found.append((document, name, spec))
    return found


def _full_value(name: str) -> str:
    for chunk in CHUNKED:
        if name in chunk.slot_names:
            return SLOT_VALUES[chunk.name]
    return FULL[name]


def _java(pairs: list[tuple[str, str]]) -> list[str]:
    java = shutil.which("java")
    if java is None:
        pytest.fail(
            "no `java` on PATH: SSM checks allowedPattern with Java's regex engine and this test "
            "runs it; install openjdk-17-jre-headless (bash .ci/install-packages does)"
        )
    stdin = "".join(f"{pattern}\0{value}\0" for pattern, value in pairs)
    done = subprocess.run(
        [java, str(CHECKER)], input=stdin.encode(), capture_output=True, timeout=120, check=True
    )
    return done.stdout.decode().splitlines()


CASES = _declared()
IDS = [f"{document}-{name}" for document, name, _ in CASES]


def test_the_values_at_capacity_are_what_a_bake_sends() -> None:
    for reference in IMAGES_FULL.split(" "):
        check_pinned_form(reference)
    assert len(IMAGES_FULL) == IMAGES.capacity
    assert len(FULL["AnsibleBundle"]) == ANSIBLE_BUNDLE.capacity
    assert patterns.PLAYBOOK_RE.fullmatch(FULL["AnsiblePlaybook"])
    assert all(len(FULL[name]) <= SLICE_CHARACTERS for name in FULL if name not in SLOT_VALUES)


def test_java_takes_every_pattern_at_full_capacity_and_every_default() -> None:
    pairs = [(spec["allowedPattern"], _full_value(name)) for _, name, spec in CASES]
    pairs += [
        (spec["allowedPattern"], str(spec["default"])) for _, _, spec in CASES if "default" in spec
    ]
    verdicts = _java(pairs)

    failed = [
        (pattern[:60], verdict)
        for (pattern, _), verdict in zip(pairs, verdicts, strict=True)
        if verdict != "match"
    ]
    assert len(verdicts) == len(pairs)
    assert failed == []


@pytest.mark.parametrize(("document", "name", "spec"), CASES, ids=IDS)
def test_re2_takes_every_pattern_at_full_capacity(
    document: str, name: str, spec: dict[str, Any]
) -> None:
    pattern = re2.compile(spec["allowedPattern"])

    assert pattern.search(_full_value(name))
    if "default" in spec:
        assert pattern.search(str(spec["default"]))


def _nested_images_pattern() -> str:
    """The Images pattern as it was: Docker's grammar as nested quantified groups."""
    host = r"[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?"
    registry = rf"({host}(\.{host})*|\[[0-9a-fA-F:.]+\])(:[0-9]+)?"
    path = r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
    reference = (
        rf"{registry}/{path}(/{path})*(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
        r"@(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})"
    )
    return rf"^{reference}( {reference})*$"


def test_the_java_checker_sees_a_nested_pattern_overflow_at_capacity() -> None:
    """What the flat patterns avoid: Java's stack runs out on the grammar as one pattern."""
    assert _java([(_nested_images_pattern(), IMAGES_FULL)]) == ["overflow"]


@pytest.mark.parametrize(
    "reference",
    [
        f"docker.io/library/nginx:1.27@{DIGEST}",
        f"localhost:5000/a/b__c.d-e@{DIGEST}",
        f"[::1]:5000/app@{DIGEST}",
        f"r.io/app@sha512:{'0' * 128}",
        "docker.io/library/nginx:1.27",
        f"nginx@{DIGEST}",
        f"r.io/App@{DIGEST}",
        f"r.io/a..b@{DIGEST}",
        f"r.io/a:{'t' * 129}@{DIGEST}",
        f"r.io/a@sha256:{'A' * 64}",
        f"-r.io/a@{DIGEST}",
    ],
)
def test_tfbake_and_the_recipe_hold_one_grammar(tmp_path: Path, reference: str) -> None:
    """The grammar the flat Images pattern leaves out, held alike before the call and after."""
    try:
        check_pinned_form(reference)
    except InvalidReference:
        by_tfbake = False
    else:
        by_tfbake = True
    run = make_scratch_builder(tmp_path).run(SSM_Images=reference)

    assert ("invalid image reference in SSM_Images" not in run.output) is by_tfbake, run.output


NESTED = "^([a-z]+ )*[a-z]+$"
TOO_LONG_FOR_RE2 = "^[a-z]{0,2048}$"


def _command_document(ssm: Any, name: str, pattern: str) -> None:
    content = {
        "schemaVersion": "2.2",
        "description": "one parameter",
        "parameters": {"Names": {"type": "String", "allowedPattern": pattern}},
        "mainSteps": [
            {"action": "aws:runShellScript", "name": "Run", "inputs": {"runCommand": ["true"]}}
        ],
    }
    ssm.create_document(Name=name, Content=json.dumps(content), DocumentType="Command")


@pytest.mark.parametrize(
    ("pattern", "value", "reason"),
    [
        (TOO_LONG_FOR_RE2, "abc", "RE2"),
        (NESTED, "ab cd", "Java"),
        ("^[a-z]{0,8}$", "ab cd", "fails allowedPattern"),
    ],
)
def test_the_sandbox_checks_a_command_pattern_as_both_engines_would(
    sandbox: Sandbox, pattern: str, value: str, reason: str
) -> None:
    _, ssm = clients(sandbox)
    name = f"pattern-{reason.split()[0].lower()}"
    _command_document(ssm, name, pattern)

    with pytest.raises(ClientError) as caught:
        ssm.send_command(
            DocumentName=name, InstanceIds=["i-0123456789abcdef0"], Parameters={"Names": [value]}
        )

    assert caught.value.response["Error"]["Code"] == "InvalidParameters"
    assert reason in caught.value.response["Error"]["Message"]


def test_the_sandbox_refuses_a_runbook_pattern_java_would_overflow_on(sandbox: Sandbox) -> None:
    _, ssm = clients(sandbox)
    content = {
        "schemaVersion": "0.3",
        "parameters": {"Names": {"type": "String", "allowedPattern": NESTED}},
        "mainSteps": [{"name": "Wait", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}],
    }
    ssm.create_document(
        Name="nested-pattern", Content=json.dumps(content), DocumentType="Automation"
    )

    with pytest.raises(ssm.exceptions.InvalidAutomationExecutionParametersException) as caught:
        ssm.start_automation_execution(DocumentName="nested-pattern", Parameters={"Names": ["a b"]})

    assert "Java" in str(caught.value)
