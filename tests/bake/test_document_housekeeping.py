"""Documents of earlier tfbake releases go once nothing can read them; the limit is named."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support.sandbox_helpers import bake_parameters, clients, register_base_ami
from tfbake.bake.documents import (
    document_names,
    ensure_documents,
    recipe_command_content,
    runbook_content,
)
from tfbake.bake.housekeeping import delete_documents, find_unused_documents
from tfbake.model.errors import AwsError
from tfbake.sandbox import Sandbox

OLD_RUNBOOK, OLD_RECIPE = "tfbake-bake-000000000001", "tfbake-recipe-000000000001"
RUNNING_RUNBOOK, RUNNING_RECIPE = "tfbake-bake-000000000002", "tfbake-recipe-000000000002"


def _create(ssm: Any, name: str, content: str, kind: str) -> None:
    ssm.create_document(Name=name, Content=content, DocumentType=kind, DocumentFormat="YAML")


def _owned(ssm: Any) -> set[str]:
    pages = ssm.get_paginator("list_documents").paginate(
        Filters=[{"Key": "Owner", "Values": ["Self"]}]
    )
    return {d["Name"] for page in pages for d in page["DocumentIdentifiers"]}


def test_only_documents_no_bake_can_read_are_deleted(sandbox: Sandbox) -> None:
    ec2, ssm = clients(sandbox)
    current = ensure_documents(ssm)
    _create(ssm, OLD_RECIPE, recipe_command_content(), "Command")
    _create(ssm, OLD_RUNBOOK, runbook_content(), "Automation")
    _create(ssm, RUNNING_RECIPE, recipe_command_content(), "Command")
    running = runbook_content().replace(str(current.recipe), RUNNING_RECIPE)
    _create(ssm, RUNNING_RUNBOOK, running, "Automation")
    sandbox.delay_step("DescribeBaseImage", 30)
    ssm.start_automation_execution(
        DocumentName=RUNNING_RUNBOOK, Parameters=bake_parameters(register_base_ami(ec2))
    )

    unused = find_unused_documents(ssm, sandbox.region, timedelta(0))
    delete_documents(ssm, sandbox.region, unused)

    assert sorted(d.name for d in unused) == [OLD_RUNBOOK, OLD_RECIPE]
    names = document_names()
    assert {names.runbook, names.recipe, RUNNING_RUNBOOK, RUNNING_RECIPE} <= _owned(ssm)
    assert not {OLD_RUNBOOK, OLD_RECIPE} & _owned(ssm)


def test_young_documents_are_kept(sandbox: Sandbox) -> None:
    _, ssm = clients(sandbox)
    _create(ssm, OLD_RECIPE, recipe_command_content(), "Command")

    assert find_unused_documents(ssm, sandbox.region, timedelta(hours=1)) == []


def test_the_document_limit_is_named_with_the_way_out(sandbox: Sandbox) -> None:
    _, ssm = clients(sandbox)
    sandbox.controls.limits.documents = 0

    with pytest.raises(AwsError) as raised:
        ensure_documents(ssm)

    assert raised.value.code == "DocumentLimitExceeded"
    assert "tfbake cleanup --apply" in str(raised.value)
