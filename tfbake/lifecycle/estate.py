"""What keeps an AMI that its own region's in-use scan does not show: the rest of the estate.

gc sees one account and region; an AMI is also needed when another account may launch it (it is
shared, or public), and when a copy of it in another region (`tfbake:copy:<region>`) is shared
or in use there. Each region's scan is taken once per gc, and again, fresh, just before an AMI
and its copies are deleted.
"""

from __future__ import annotations

from typing import Any

from tfbake.aws.calls import AwsContext, aws_errors, error_code
from tfbake.lifecycle.usage import UsageMap, scan_usage
from tfbake.model.ami import AmiRecord
from tfbake.model.errors import AwsError

_GONE = frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Unavailable"})


class Estate:
    def __init__(self, aws: AwsContext, home_usage: UsageMap | None = None) -> None:
        self.aws = aws
        self._usage: dict[str, UsageMap] = {}
        if home_usage is not None:
            self._usage[aws.effective_region] = home_usage

    def why_kept(self, ami: AmiRecord, *, fresh: bool = False) -> str | None:
        """Why `ami` must stay although its region's scan (taken with the plan) let it go."""
        for region, ami_id in ami.regions.items():
            if self._shared(region, ami_id):
                where = "" if region == ami.region else f" (its copy in {region})"
                return f"shared with other accounts: {ami_id}{where} has launch permissions"
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

    def _shared(self, region: str, ami_id: str) -> bool:
        ec2: Any = self.aws.client("ec2", region)
        try:
            with aws_errors(f"ec2:DescribeImageAttribute {ami_id}", region):
                granted = ec2.describe_image_attribute(ImageId=ami_id, Attribute="launchPermission")
        except AwsError as err:
            if error_code(err) in _GONE:
                return False  # a copy already gone shares nothing
            raise
        return bool(granted.get("LaunchPermissions"))
