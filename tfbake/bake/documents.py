"""The SSM documents tfbake ships, named by their content, and the runbook's parameters.

Two documents: the Automation runbook (runbook.yaml) and the Command document that runs the
on-builder recipe (recipe-command.yaml with recipe.sh as its script). Each is named by a hash of
its rendered content, so a changed document gets a new name: concurrent first runs create the
same document (one wins, the others find it), and an upgrade never edits a document that a
running bake of the previous release still reads. The runbook names the recipe document by its
hashed name, so a changed recipe changes the runbook's name too.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from tfbake.aws.calls import aws_errors, error_code
from tfbake.bake.comments import without_shell_comments, without_yaml_comments
from tfbake.model import document_budget, tags
from tfbake.model.chunks import ANSIBLE_BUNDLE, CHUNKED, IMAGES, PROVISION, SLICE_CHARACTERS
from tfbake.model.errors import AwsError, BadInput
from tfbake.model.image_set import DOCKER
from tfbake.model.patterns import (
    CONTAINERD_NAMESPACE_PATTERN,
    ECR_REGISTRIES_PATTERN,
    IMAGES_PATTERN,
    PLAYBOOK_PATTERN,
)
from tfbake.model.reference import check_pinned_form

RUNBOOK_TEMPLATE = "runbook.yaml"
RECIPE_TEMPLATE = "recipe-command.yaml"
RECIPE_SCRIPT = "recipe.sh"
BUILDER_USER_DATA = "builder-user-data.sh"

# Documents are named by their content: a prefix and the start of the content's hash.
RUNBOOK_PREFIX = "tfbake-bake"
RECIPE_PREFIX = "tfbake-recipe"
_NAME_HASH_LENGTH = 12
# Any name this or an earlier release gave a document.
DOCUMENT_NAME_RE = re.compile(
    rf"(?:{RUNBOOK_PREFIX}|{RECIPE_PREFIX})-[0-9a-f]{{{_NAME_HASH_LENGTH}}}"
)
_DOCUMENT_ACTIVE_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class DocumentNames:
    runbook: str
    # None when the runbook's name was configured: that runbook names its own recipe document.
    recipe: str | None
    # The version whose content was verified to be this tfbake's runbook; None when configured.
    runbook_version: str | None = None


def _template(name: str) -> str:
    text = resources.files("tfbake.bake").joinpath(name).read_text(encoding="utf-8")
    # Comments are not what SSM runs: a fixed comment must not rename documents or rebake.
    if name.endswith(".sh"):
        return without_shell_comments(text)
    return without_yaml_comments(text)


def _yaml_single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# The allowedPatterns both documents share with tfbake's own checks (model/patterns.py).
_PATTERNS = {
    "__IMAGES_PATTERN__": IMAGES_PATTERN,
    "__ECR_PATTERN__": ECR_REGISTRIES_PATTERN,
    "__PLAYBOOK_PATTERN__": PLAYBOOK_PATTERN,
    "__CONTAINERD_NAMESPACE_PATTERN__": CONTAINERD_NAMESPACE_PATTERN,
}


def _with_patterns(text: str) -> str:
    for placeholder, pattern in _PATTERNS.items():
        text = text.replace(placeholder, _yaml_single_quoted(pattern))
    return text


@cache
def recipe_command_content() -> str:
    """The recipe's Command document, with recipe.sh embedded line by line."""
    script = _template(RECIPE_SCRIPT)
    if "{{" in script:
        # SSM would substitute parameters there: exactly the splicing ENV_VAR exists to avoid.
        raise RuntimeError(f"{RECIPE_SCRIPT} contains '{{{{', which SSM would interpolate")
    lines: list[str] = []
    for line in _template(RECIPE_TEMPLATE).splitlines():
        stripped = line.strip()
        if stripped == "__RECIPE_SCRIPT_LINES__":
            indent = line[: len(line) - len(line.lstrip())]
            # JSON strings are valid YAML double-quoted scalars: every byte survives as written.
            lines.extend(f"{indent}- {json.dumps(s)}" for s in script.splitlines())
        else:
            lines.append(_with_patterns(line))
    return "\n".join(lines) + "\n"


def content_hash(content: str) -> str:
    """The document hash SSM reports (DescribeDocument's Hash, HashType Sha256) for `content`."""
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def _content_name(prefix: str, content: str) -> str:
    return f"{prefix}-{content_hash(content)[:_NAME_HASH_LENGTH]}"


@cache
def runbook_content() -> str:
    """The bake runbook, naming the recipe document by its content-derived name."""
    recipe = recipe_command_content()
    recipe_name = _content_name(RECIPE_PREFIX, recipe)
    declarations = "\n".join(parameter.declarations() for parameter in CHUNKED)
    return _with_patterns(
        _template(RUNBOOK_TEMPLATE)
        .replace("__RECIPE_DOCUMENT__", recipe_name)
        .replace("__RECIPE_DOCUMENT_HASH__", content_hash(recipe))
        .replace("  __CHUNKED_PARAMETERS__", declarations)
        .replace("        __RECIPE_STEP_PARAMETERS__", _recipe_step_yaml(indent=8))
        .replace("__BUILDER_USER_DATA__", builder_user_data())
    )


def recipe_step_parameters() -> dict[str, str]:
    """What the runbook's RunRecipe step hands the recipe document: each value a template of
    the runbook's own parameters, which SSM fills in when the step runs."""
    return {
        "Images": IMAGES.joined(),
        "Provision": PROVISION.joined(),
        "RegistryCredentialsParameter": "{{ RegistryCredentialsParameter }}",
        "EcrRegistries": "{{ EcrRegistries }}",
        "Region": "{{ Region }}",
        "Runtime": "{{ Runtime }}",
        "ContainerdNamespace": "{{ ContainerdNamespace }}",
        "AnsibleBundle": ANSIBLE_BUNDLE.joined(),
        "AnsiblePlaybook": "{{ AnsiblePlaybook }}",
        "AnsibleExtraVars": "{{ AnsibleExtraVars }}",
        "FullOutput": "{{ RecipeLogEnabled }}",
    }


def _recipe_step_yaml(indent: int) -> str:
    return "\n".join(
        f"{' ' * indent}{name}: {_yaml_single_quoted(template)}"
        for name, template in recipe_step_parameters().items()
    )


def builder_user_data() -> str:
    """The builders' user data (it installs a missing SSM agent), base64 for aws:runInstances.

    Gzipped, which cloud-init undoes itself: both launch steps carry it, and every byte of the
    runbook is a byte less for the image set's values (model/document_budget.py). mtime 0 keeps
    it, and so the runbook's name, the same from one render to the next.
    """
    script = _template(BUILDER_USER_DATA).encode("utf-8")
    return base64.b64encode(gzip.compress(script, compresslevel=9, mtime=0)).decode()


def document_names() -> DocumentNames:
    return DocumentNames(
        runbook=_content_name(RUNBOOK_PREFIX, runbook_content()),
        recipe=_content_name(RECIPE_PREFIX, recipe_command_content()),
    )


def recipe_digest() -> str:
    """sha256 over what decides what a builder does: both documents exactly as created.

    The rendered documents, not their templates: the parameter slots (model/chunks.py) and patterns
    are rendered in, and the runbook names the recipe document by its content's hash.
    """
    digest = hashlib.sha256()
    for content in (runbook_content(), recipe_command_content()):
        data = content.encode("utf-8")
        # Length-prefixed, so that moving bytes from one document to the other changes it.
        digest.update(f"{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def ensure_documents(ssm: Any, *, runbook_name: str | None = None) -> DocumentNames:
    """Create both documents when missing, and verify their content when present.

    Anyone allowed to create a document of the same name could otherwise have the bake run
    their runbook: a document is used only when its hash is that of what this tfbake renders.
    A configured runbook name bypasses both (that runbook is the operator's to trust).
    """
    if runbook_name:
        return DocumentNames(runbook=runbook_name, recipe=None)
    names = document_names()
    assert names.recipe is not None
    region = ssm.meta.region_name
    # The recipe first: a runbook is of no use before the document it runs exists.
    _ensure_document(ssm, names.recipe, recipe_command_content(), "Command", region)
    version = _ensure_document(ssm, names.runbook, runbook_content(), "Automation", region)
    return DocumentNames(names.runbook, names.recipe, runbook_version=version)


def _ensure_document(
    ssm: Any, name: str, content: str, document_type: str, region: str
) -> str | None:
    """The verified document's version (None when SSM does not report one)."""
    from botocore.exceptions import ClientError

    with aws_errors(f"ssm:DescribeDocument {name}", region):
        try:
            document: dict[str, Any] | None = ssm.describe_document(Name=name)["Document"]
        except ClientError as err:
            if error_code(err) != "InvalidDocument":
                raise
            document = None
    if document is None:
        with aws_errors(f"ssm:CreateDocument {name}", region):
            try:
                document = ssm.create_document(
                    Name=name, Content=content, DocumentType=document_type, DocumentFormat="YAML"
                )["DocumentDescription"]
            except ClientError as err:
                if error_code(err) == "DocumentLimitExceeded":
                    raise AwsError(
                        f"ssm:CreateDocument {name} in {region}: the account holds as many SSM "
                        "documents as it may; `tfbake cleanup --apply` deletes those of earlier "
                        "tfbake releases that no bake still uses",
                        code="DocumentLimitExceeded",
                    ) from None
                # Content-addressed names: whoever created it first created the same document,
                # or someone else's squats the name, which the hash check below refuses.
                if error_code(err) != "DocumentAlreadyExists":
                    raise
                document = {"Status": "Creating"}
    if document.get("Status", "Active") != "Active":
        document = _wait_until_active(ssm, name, region)
    verify_document_hash(document, name, content_hash(content), region)
    return document.get("DocumentVersion")


def verify_document_hash(
    document: Mapping[str, Any], name: str, expected: str, region: str
) -> None:
    """Refuse a document (DescribeDocument's description) whose content is not `expected`."""
    found = document.get("Hash", "")
    if document.get("HashType", "Sha256") != "Sha256" or found != expected:
        raise AwsError(
            f"SSM document {name} in {region} is not the one this tfbake ships (its hash is "
            f"{found[:12] or 'missing'}, expected {expected[:12]}): someone else created it; "
            "delete it or set builder.document_name to a runbook you manage"
        )


def _wait_until_active(ssm: Any, name: str, region: str) -> dict[str, Any]:
    # CreateDocument returns while the document is still "Creating"; an execution started on it
    # then would fail.
    deadline = time.monotonic() + _DOCUMENT_ACTIVE_TIMEOUT_SECONDS
    while True:
        with aws_errors(f"ssm:DescribeDocument {name}", region):
            document: dict[str, Any] = ssm.describe_document(Name=name)["Document"]
        status = document.get("Status", "Active")
        if status == "Active":
            return document
        if status == "Failed" or time.monotonic() > deadline:
            reason = document.get("StatusInformation") or f"still {status}"
            raise AwsError(f"SSM document {name} in {region} is not usable: {reason}")
        time.sleep(0.5)


def encode_provision(commands: Sequence[str]) -> str:
    """Base64 of the commands, each ended by NUL: any text (newlines, quotes) survives intact."""
    for command in commands:
        if "\0" in command:
            raise BadInput("a provision command cannot contain a NUL character")
    return base64.b64encode(b"".join(c.encode("utf-8") + b"\0" for c in commands)).decode()


def runbook_parameters(
    *,
    base_ami_id: str,
    instance_type: str,
    subnet_id: str | None,
    security_group_ids: Sequence[str],
    instance_profile: str | None,
    volume_size_gib: int,
    volume_type: str,
    encrypted: bool,
    kms_key_id: str | None,
    image_name: str,
    fingerprint: str,
    set_name: str,
    images: Sequence[str],
    provision: Sequence[str],
    registry_credentials_parameter: str | None,
    ecr_registries: Sequence[str],
    region: str,
    automation_role_arn: str | None,
    extra_tags: Mapping[str, str],
    ansible_bundle: str | None = None,
    ansible_playbook: str | None = None,
    ansible_extra_vars: str | None = None,
    recipe_log_group: str | None = None,
    runtime: str = DOCKER,
    containerd_namespace: str | None = None,
) -> dict[str, list[str]]:
    """The Parameters of StartAutomationExecution for the runbook.

    Optional values that are empty are left out, so the runbook's defaults apply: SSM accepts a
    missing optional parameter everywhere, an empty string not always. The values come from a
    spec that tfbake/spec checked field by field; only the image references are checked again,
    for the shape the recipe's shell takes, since they are what goes nearest to it.
    """
    from tfbake import __version__
    from tfbake.model.fingerprint import SCHEME

    # tfbake:version keeps ExtraTags non-empty, which the runbook's CreateTags steps need.
    all_extra = {tags.VERSION: __version__, **extra_tags}
    parameters: dict[str, list[str]] = {
        "BaseAmiId": [base_ami_id],
        "InstanceType": [instance_type],
        "VolumeSize": [str(volume_size_gib)],
        "VolumeType": [volume_type],
        "Encrypted": ["true" if encrypted else "false"],
        "ImageName": [image_name],
        "Fingerprint": [fingerprint],
        "FingerprintScheme": [SCHEME],
        "SetName": [set_name],
        "Region": [region],
        "ExtraTags": [tags.parameter_entry(k, v) for k, v in all_extra.items()],
    }
    optional = {
        "SubnetId": subnet_id,
        "InstanceProfileName": instance_profile,
        "KmsKeyId": kms_key_id,
        "RegistryCredentialsParameter": registry_credentials_parameter,
        "AutomationAssumeRole": automation_role_arn,
        "EcrRegistries": " ".join(ecr_registries) if ecr_registries else None,
        # Docker, the runbook's default, is left out: a bake without containerd sends what it
        # sent before the parameter existed.
        "Runtime": runtime if runtime != DOCKER else None,
        "ContainerdNamespace": containerd_namespace if runtime != DOCKER else None,
    }
    parameters.update({name: [value] for name, value in optional.items() if value})
    for image in images:
        check_pinned_form(image)
    parameters.update(IMAGES.split(" ".join(images), "the image references"))
    if provision:
        parameters.update(PROVISION.split(encode_provision(provision), "the provision commands"))
    parameters.update(ansible_parameters(ansible_bundle, ansible_playbook, ansible_extra_vars))
    if security_group_ids:
        parameters["SecurityGroupIds"] = list(security_group_ids)
    # Always given, never left to its default: the recipe's budget counts the values RunRecipe
    # sends from what is given here (recipe_step_parameters).
    parameters["RecipeLogEnabled"] = ["true" if recipe_log_group else "false"]
    if recipe_log_group:
        parameters["RecipeLogGroup"] = [recipe_log_group]
    refuse_oversized_bake(parameters)
    return parameters


def refuse_oversized_bake(parameters: Mapping[str, Sequence[str]]) -> None:
    """Refuse parameters that would take either document past its 64 KB
    (model/document_budget.py)."""
    parts = {
        label: sum(len(v) for slot in chunk.slot_names for v in parameters.get(slot, ()))
        for label, chunk in (("images", IMAGES), ("provision", PROVISION),
                             ("Ansible bundle", ANSIBLE_BUNDLE))
    }  # fmt: skip
    recipe = recipe_command_content()
    sent = document_budget.recipe_parameters_sent(recipe_step_parameters(), parameters)
    document_budget.refuse_oversized("recipe", recipe, sent, parts)
    document_budget.refuse_oversized("runbook", runbook_content(), parameters, parts)


def ansible_parameters(
    bundle: str | None, playbook: str | None, extra_vars: str | None
) -> dict[str, list[str]]:
    """The runbook's Ansible parameters: the bundle's base64 cut into values SSM accepts."""
    if not bundle:
        if playbook:
            raise BadInput("an Ansible playbook needs its bundle")
        return {}
    if not playbook:
        raise BadInput("an Ansible bundle needs the playbook to run")
    parameters = ANSIBLE_BUNDLE.split(bundle, "the Ansible bundle's base64")
    parameters["AnsiblePlaybook"] = [playbook]
    # "{}" is left out like any empty value: SSM refuses an empty one, and the recipe reads
    # a missing one as no variables.
    if extra_vars and extra_vars != "{}":
        if len(extra_vars) > SLICE_CHARACTERS:
            raise BadInput(
                f"Ansible extra vars take {len(extra_vars)} characters of JSON; at most "
                f"{SLICE_CHARACTERS} travel as a parameter (put more in a vars file of the bundle)"
            )
        parameters["AnsibleExtraVars"] = [extra_vars]
    return parameters
