"""The options every command takes (--region, --profile, --json, -v), as one typed value."""

from __future__ import annotations

from dataclasses import dataclass

import click

from tfbake.aws.calls import AwsContext
from tfbake.model.plan import Plan


@dataclass
class Settings:
    region: str | None = None
    profile: str | None = None
    json: bool = False
    verbose: int = 0

    def explain(self, plan: Plan) -> None:
        """With -v, the resolved inputs on stderr (stdout stays the command's answer)."""
        if self.verbose:
            from tfbake.cli.render import plan_details

            for line in plan_details(plan):
                click.echo(f"tfbake: {line}", err=True)

    def aws(self) -> AwsContext:
        return AwsContext(region=self.region, profile=self.profile, region_hint="pass --region")
