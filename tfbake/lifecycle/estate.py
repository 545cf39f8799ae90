"""What keeps an AMI that its own region's in-use scan does not show: the rest of the estate.

gc sees one account and region; an AMI is also needed when another account may launch it (it is
shared, or public), and when a copy of it in another region (`tfbake:copy:<region>`) is shared
or in use there. Each region's scan is taken once per gc, and again, fresh, just before an AMI
and its copies are deleted.

The image account cannot see the launch templates of the accounts it shares with, so sharing
alone would keep an AMI forever. The way out is announced, not guessed: gc gives a shared AMI
it would otherwise remove a DeprecationTime (collection.py), which every account it is shared
with sees, and only once that time has passed does sharing stop keeping it.
"""

from __future__ import annotations

from datetime import datetime

from tfbake.aws.calls import AwsContext
from tfbake.lifecycle.shares import launch_permissions
from tfbake.lifecycle.usage import UsageMap, scan_usage
from tfbake.model.ami import AmiRecord


class Estate:
    def __init__(self, aws: AwsContext, home_usage: UsageMap | None = None) -> None:
        self.aws = aws
        self._usage: dict[str, UsageMap] = {}
        if home_usage is not None:
            self._usage[aws.effective_region] = home_usage

    def why_kept(self, ami: AmiRecord, now: datetime, *, fresh: bool = False) -> str | None:
        """Why `ami` must stay although its region's scan (taken with the plan) let it go."""
        notice_over = ami.deprecated_by(now)
        for region, ami_id in ami.regions.items():
            if not notice_over and self.shared(region, ami_id):
                where = "" if region == ami.region else f" (its copy in {region})"
                notice = (
                    f"; deprecated, removable after {ami.deprecation_time}"
                    if ami.deprecation_time
                    else ""
                )
                return f"shared with other accounts: {ami_id}{where} has launch permissions{notice}"
            if region == ami.region and not fresh:
                continue  # judged by the plan's own scan
            uses = self.usage(region, fresh=fresh).get(ami_id, ())
            if uses:
                copy = "" if region == ami.region else f"its copy {ami_id} in {region} is "
                return f"{copy}in use by {uses[0]}" + (" (rescanned)" if fresh else "")
        return None

    def usage(self, region: str, *, fresh: bool = False) -> UsageMap:
        if fresh or region not in self._usage:
            self._usage[region] = scan_usage(self.region_aws(region))
        return self._usage[region]

    def region_aws(self, region: str) -> AwsContext:
        if region == self.aws.effective_region:
            return self.aws
        return AwsContext(region=region, profile=self.aws.profile)

    def shared(self, region: str, ami_id: str) -> bool:
        return bool(launch_permissions(self.aws, region, ami_id))
