"""A builder that never comes online: its user data installs the agent, its console says why."""

from __future__ import annotations

import base64
import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tfbake.bake import documents
from tfbake.bake.agent_diagnosis import SILENT_GRACE_SECONDS, cause_from_console

LAUNCHES = ("LaunchBuilder", "LaunchBuilderWithKmsKey")


@pytest.mark.parametrize("step", LAUNCHES)
def test_every_launch_carries_the_user_data_that_installs_the_agent(step: str) -> None:
    steps = {s["name"]: s for s in yaml.safe_load(documents.runbook_content())["mainSteps"]}

    # Gzipped to spare the runbook's 64 KB; cloud-init decompresses user data itself.
    script = gzip.decompress(base64.b64decode(steps[step]["inputs"]["UserData"])).decode()

    assert script == documents._template(documents.BUILDER_USER_DATA)
    # AWS's regional packages: https://s3.REGION.amazonaws.com/amazon-ssm-REGION/latest/...
    assert 'base="https://s3.$reg.amazonaws.com/amazon-ssm-$reg/latest"' in script
    assert '"$base/debian_$arch/amazon-ssm-agent.deb"' in script
    assert '"$base/linux_$arch/amazon-ssm-agent.rpm"' in script


BOOTED = "[  OK  ] Reached target multi-user.target - Multi-User System.\n"


def test_a_failed_install_is_named_at_once() -> None:
    console = BOOTED + "tfbake-agent: install failed: neither curl nor wget to fetch the agent\n"

    cause = cause_from_console("i-0abc", console, waited_seconds=5)

    assert cause is not None
    assert "SSM agent never started on builder i-0abc" in cause
    assert "neither curl nor wget" in cause


def test_a_running_agent_that_does_not_register_points_at_the_network() -> None:
    console = BOOTED + "tfbake-agent: agent present (amazon-ssm-agent.service)\n"

    early = cause_from_console("i-0abc", console, waited_seconds=30)
    late = cause_from_console("i-0abc", console, waited_seconds=SILENT_GRACE_SECONDS)

    assert early is None  # registering takes a while on EC2
    assert late is not None and "no route to the SSM endpoints" in late


def test_a_booted_builder_without_any_agent_line_is_named_after_the_grace() -> None:
    cause = cause_from_console("i-0abc", BOOTED, waited_seconds=SILENT_GRACE_SECONDS + 1)

    assert cause is not None and "no SSM agent started on builder i-0abc" in cause


def test_an_empty_console_says_nothing_yet() -> None:
    assert cause_from_console("i-0abc", "", waited_seconds=SILENT_GRACE_SECONDS * 2) is None


def test_the_user_data_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed: apt-get install shellcheck"
    script = Path(documents.__file__).with_name(documents.BUILDER_USER_DATA)
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
