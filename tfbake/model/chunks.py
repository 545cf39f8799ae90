"""Values longer than one Automation parameter may carry, cut into numbered slots.

StartAutomationExecution takes at most 512 characters per parameter value (and refuses empty
ones), while the image list of a large set, the provision commands and an Ansible bundle run to
kilobytes. Each such value is declared in the runbook as NAME01, NAME02, ... (all but the first
defaulting to ''), cut into slices of at most 512 characters at any position, and joined back
into one value by the RunRecipe step, which passes it on to the recipe's Command document.

The slots bound each value (IMAGES 20,480 characters, PROVISION 8,192, ANSIBLE_BUNDLE 16,384),
but not their sum: a document's 64 KB counts the parameter values it runs with
(model/document_budget.py), and the documents themselves take about 40 KB each, so the three
values together get about 23 KB (less the other parameters). runbook_parameters refuses a set
beyond either limit before anything starts, naming the share of each.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfbake.model.errors import BadInput

SLICE_CHARACTERS = 512


@dataclass(frozen=True)
class ChunkedParameter:
    name: str  # the recipe document's parameter the slots join into
    slots: int
    characters: str  # regex character class of the value's alphabet
    description: str
    required: bool = False

    @property
    def slot_names(self) -> tuple[str, ...]:
        return tuple(f"{self.name}{index:02d}" for index in range(1, self.slots + 1))

    @property
    def capacity(self) -> int:
        return self.slots * SLICE_CHARACTERS

    def split(self, value: str, what: str) -> dict[str, list[str]]:
        """The StartAutomationExecution parameters carrying `value`; empty slots left out."""
        if len(value) > self.capacity:
            raise BadInput(
                f"{what} take {len(value)} characters; a bake carries at most {self.capacity} "
                f"({self.slots} parameter values of {SLICE_CHARACTERS} characters)"
            )
        slices = [
            value[start : start + SLICE_CHARACTERS]
            for start in range(0, len(value), SLICE_CHARACTERS)
        ]
        return {name: [part] for name, part in zip(self.slot_names, slices, strict=False)}

    def declarations(self) -> str:
        """The runbook's YAML for the slots, indented as parameters."""
        pattern = f"'^[{self.characters}]{{0,{SLICE_CHARACTERS}}}$'"
        blocks = []
        for index, name in enumerate(self.slot_names, start=1):
            block = (
                f"  {name}:\n"
                "    type: String\n"
                f"    description: Part {index} of {self.description}.\n"
            )
            if not (self.required and index == 1):
                block += "    default: ''\n"
            blocks.append(block + f"    allowedPattern: {pattern}")
        return "\n".join(blocks)

    def joined(self) -> str:
        """The value RunRecipe hands on, as a template of the runbook's parameters: every slot,
        in order, with nothing between them."""
        return "".join(f"{{{{ {name} }}}}" for name in self.slot_names)


BASE64 = "A-Za-z0-9+/="
IMAGES = ChunkedParameter(
    "Images", 40, r"A-Za-z0-9./:@_ \[\]-",
    "the space-separated pinned image references", required=True,
)  # fmt: skip
PROVISION = ChunkedParameter(
    "Provision", 16, BASE64, "the base64 of the provision commands, each ended by a NUL byte"
)
# As many slots as tfbake.spec.ansible allows for a bundle (its size check names this limit).
ANSIBLE_BUNDLE = ChunkedParameter("AnsibleBundle", 32, BASE64, "the Ansible bundle's base64")
CHUNKED = (IMAGES, PROVISION, ANSIBLE_BUNDLE)
