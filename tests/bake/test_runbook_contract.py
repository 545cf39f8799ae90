"""What tfbake reads of its runbook (tfbake/bake/contract.py) is what the runbook writes."""

from __future__ import annotations

from typing import Any

import yaml

from tfbake.bake import contract, documents
from tfbake.model import tags


def runbook() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(documents.runbook_content())
    return loaded


def steps() -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in runbook()["mainSteps"]}


def test_the_steps_the_client_watches_exist_with_the_actions_it_expects() -> None:
    found = steps()
    assert found[contract.IDENTIFY_BUILDER]["action"] == "aws:executeAwsApi"
    assert found[contract.WAIT_FOR_BUILDER_ONLINE]["action"] == "aws:waitForAwsResourceProperty"
    assert found[contract.RUN_RECIPE]["action"] == "aws:runCommand"


def test_the_outputs_the_client_reads_are_declared() -> None:
    identify = steps()[contract.IDENTIFY_BUILDER]
    assert contract.INSTANCE_ID_OUTPUT in [output["Name"] for output in identify["outputs"]]
    assert runbook()["outputs"] == [contract.IMAGE_OUTPUT]
    step, output = contract.IMAGE_OUTPUT.split(".")
    assert output == "ImageId" and step in steps()


def test_the_recipe_plugin_is_the_recipe_documents_step() -> None:
    recipe = yaml.safe_load(documents.recipe_command_content())
    assert [step["name"] for step in recipe["mainSteps"]] == [contract.RECIPE_PLUGIN]


def test_the_builder_query_matches_the_tags_the_launch_steps_write() -> None:
    launched = steps()["LaunchBuilder"]["inputs"]["TagSpecifications"]
    [instance] = [spec for spec in launched if spec["ResourceType"] == "instance"]
    written = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    queried = {f["Name"]: f["Values"] for f in contract.builder_filters("exec", ["running"])}
    assert written[tags.ROLE] == tags.ROLE_BUILDER
    assert queried[f"tag:{tags.ROLE}"] == [written[tags.ROLE]]
    assert written[tags.EXECUTION_ID] == "{{ automation:EXECUTION_ID }}"
    assert f"tag:{tags.EXECUTION_ID}" in queried


def test_live_builders_are_those_the_cancel_workflow_terminates() -> None:
    cancel = steps()["FindBuilderOnCancel"]["inputs"]["Filters"]
    [states] = [f["Values"] for f in cancel if f["Name"] == "instance-state-name"]
    assert states == contract.LIVE_STATES
