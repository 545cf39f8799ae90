"""The 64 KB of an SSM document, which counts the parameter values it runs with.

CreateDocument's reference: the content "must not exceed 64KB. This quota also includes the
content specified for input parameters at runtime"; SendCommand fails with
MaxDocumentSizeExceeded when a Command document and its values exceed it. The recipe document
is sent whole with every value RunRecipe hands it, so its size and those values share one budget.

StartAutomationExecution documents no such error, but the quota is stated for documents of
every type: the runbook and its own parameter values are held to the same budget. With the
documents of this release it is the tighter of the two by a few hundred bytes (tags and slot
names count there), so the reading costs little, and a set is refused before its builder starts
rather than at RunRecipe.

Sizes are UTF-8 bytes of the content and of every parameter name and value, counted with the
names so that the reading errs on the side of refusing here rather than there; SSM's quotas
use KB as 1024 bytes (a standard parameter's 4 KB is 4096 characters).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from tfbake.model.errors import BadInput

DOCUMENT_SIZE_LIMIT = 64 * 1024
_PLACEHOLDER = re.compile(r"\{\{ *([A-Za-z0-9_]+) *\}\}")


def document_size(content: str, parameters: Mapping[str, Sequence[str]]) -> int:
    """What counts toward the limit: the document and every parameter name and value."""
    values = sum(
        len(name.encode("utf-8")) + sum(len(value.encode("utf-8")) for value in items)
        for name, items in parameters.items()
    )
    return len(content.encode("utf-8")) + values


def refuse_oversized(
    document: str,
    content: str,
    parameters: Mapping[str, Sequence[str]],
    parts: Mapping[str, int],
) -> None:
    """Refuse a bake whose `document` (content) would run with `parameters` beyond the limit.

    `parts` names what the user controls (images, provision, Ansible bundle) by its share of the
    values in bytes, so the error says what to make smaller.
    """
    size = document_size(content, parameters)
    excess = size - DOCUMENT_SIZE_LIMIT
    if excess <= 0:
        return
    content_bytes = len(content.encode("utf-8"))
    named = sum(parts.values())
    shares = [f"{label} {share}" for label, share in parts.items() if share]
    shares.append(f"other values {size - content_bytes - named}")
    raise BadInput(
        f"the image set is {excess} bytes too big for one bake: the {document} document "
        f"({content_bytes} bytes) and its parameter values ({', '.join(shares)}) take {size} "
        f"bytes, and SSM allows {DOCUMENT_SIZE_LIMIT} for a document and its values together"
    )


def recipe_parameters_sent(
    templates: Mapping[str, str], values: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """The parameters a Command step with these `{{ Name }}` templates sends, for `values`.

    A runbook parameter left out is its default, '' for every one the recipe step passes.
    """

    def value_of(match: re.Match[str]) -> str:
        given = values.get(match[1])
        return given[0] if given else ""

    return {name: [_PLACEHOLDER.sub(value_of, template)] for name, template in templates.items()}
