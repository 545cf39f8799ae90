"""SSM's 64 KB limit on a document, as the sandbox models it, apart from tfbake's own reading.

CreateDocument's reference: the content "must not exceed 64KB. This quota also includes the
content specified for input parameters at runtime". SendCommand refuses a Command document past
it (MaxDocumentSizeExceeded); the sandbox holds an Automation execution's runbook to it too.
Counted here as AWS words it: the content's UTF-8 bytes and the values' (KB as 1,024 bytes).
tfbake keeps its own, stricter reading (model/document_budget.py, which counts the parameter
names as well): the two are written apart so that one wrong model cannot pass both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

DOCUMENT_LIMIT_BYTES = 64 * 1024


def document_bytes(content: str, parameters: Mapping[str, Sequence[str]]) -> int:
    values = sum(len(value.encode("utf-8")) for items in parameters.values() for value in items)
    return len(content.encode("utf-8")) + values
