"""Delete the SSM documents of earlier tfbake releases that nothing references any more.

Every release that changes the runbook or the recipe creates new content-addressed documents
(documents.py) and leaves the old ones behind; an account holds at most 500 documents, after
which CreateDocument fails with DocumentLimitExceeded and no bake can start. A document is kept
while anything may still read it:
- it is one this tfbake renders;
- a bake still running runs it (its runbook), or runs the recipe its runbook names;
- it is younger than `min_age`: another release may have just created it and be about to start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from tfbake.aws.calls import aws_errors, paginate
from tfbake.bake.documents import DOCUMENT_NAME_RE, RUNBOOK_PREFIX, document_names
from tfbake.bake.execution import READING_DOCUMENTS

# Younger documents are kept: a release that just created them may be about to start a bake.
MIN_AGE = timedelta(days=1)


@dataclass(frozen=True)
class UnusedDocument:
    name: str
    created: datetime


def find_unused_documents(ssm: Any, region: str, min_age: timedelta) -> list[UnusedDocument]:
    current = document_names()
    keep = {current.runbook, current.recipe} | _running_documents(ssm, region)
    now = datetime.now(timezone.utc)
    with aws_errors("ssm:ListDocuments", region):
        owned = list(
            paginate(
                ssm,
                "list_documents",
                "DocumentIdentifiers",
                Filters=[{"Key": "Owner", "Values": ["Self"]}],
            )
        )
    unused = []
    for document in owned:
        name = document["Name"]
        if not DOCUMENT_NAME_RE.fullmatch(name) or name in keep:
            continue
        created = document.get("CreatedDate") or _created(ssm, name, region)
        if now - created >= min_age:
            unused.append(UnusedDocument(name, created))
    return sorted(unused, key=lambda d: (d.created, d.name))


def _created(ssm: Any, name: str, region: str) -> datetime:
    # ListDocuments' identifiers carry CreatedDate on AWS; DescribeDocument always does.
    with aws_errors(f"ssm:DescribeDocument {name}", region):
        created: datetime = ssm.describe_document(Name=name)["Document"]["CreatedDate"]
    return created


def delete_documents(ssm: Any, region: str, documents: list[UnusedDocument]) -> None:
    for document in documents:
        with aws_errors(f"ssm:DeleteDocument {document.name}", region):
            ssm.delete_document(Name=document.name)


def _running_documents(ssm: Any, region: str) -> set[str]:
    """The runbooks of bakes still running, and the recipe documents those runbooks name."""
    filters = [
        {"Key": "ExecutionStatus", "Values": READING_DOCUMENTS},
        {"Key": "DocumentNamePrefix", "Values": [RUNBOOK_PREFIX + "-"]},
    ]
    with aws_errors("ssm:DescribeAutomationExecutions", region):
        running = {
            metadata["DocumentName"]
            for metadata in paginate(
                ssm,
                "describe_automation_executions",
                "AutomationExecutionMetadataList",
                Filters=filters,
            )
        }
    names = set(running)
    for runbook in running:
        with aws_errors(f"ssm:GetDocument {runbook}", region):
            content = ssm.get_document(Name=runbook).get("Content", "")
        names.update(DOCUMENT_NAME_RE.findall(content))
    return names
