"""Where a baked AMI goes once it is ready: other regions, other accounts, fast-restore zones.

None of this changes what is on the disk, so none of it is a fingerprint input: the same AMI is
copied, shared and pre-warmed wherever the spec says. Validation here is pure; the checks that
need the home region (the region the bake runs in) live in tfbake/distribute/apply.py.
"""

from __future__ import annotations

import re

from tfbake.model.image_set import Distribution, Share, Volume
from tfbake.model.patterns import ACCOUNT_ID_RE, KMS_KEY_RE, KMS_KEY_SHAPE, REGION_RE
from tfbake.spec.fields import Fields

DISTRIBUTION_FIELDS = ("regions", "region_kms_keys", "share", "fast_snapshot_restore")
SHARE_FIELDS = ("accounts", "organizations", "organizational_units")


ZONE_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}(?:-[a-z]+-[0-9]+)?[a-z]")
ORGANIZATION_RE = re.compile(
    r"arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}"
)
OU_RE = re.compile(
    r"arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}"
)
KMS_ARN_REGION_RE = re.compile(r"arn:aws[a-z-]*:kms:([a-z0-9-]+):")
# Shown wherever sharing is refused: the one way out AWS offers.
SHARE_FIX = (
    "set volume.kms_key_id to a customer-managed key and grant the accounts kms:Decrypt/CreateGrant"
)


def distribution_from(fields: Fields, volume: Volume) -> Distribution:
    """Validate the distribution fields of a spec; `volume` says how the home AMI is encrypted."""
    regions = _unique(fields, "regions", REGION_RE, "a region name like eu-west-1")
    keys = _region_kms_keys(fields, regions)
    share = _share(fields.nested("share"))
    if share and volume.encrypted and not volume.kms_key_id:
        raise fields.error(
            "share",
            "AWS cannot share an AMI encrypted with the AWS-managed EBS key "
            f"(volume.encrypted is true and volume.kms_key_id is not set); {SHARE_FIX}",
        )
    zones = _unique(
        fields, "fast_snapshot_restore", ZONE_RE, "an availability zone like us-east-1a"
    )
    return Distribution(regions, keys, share, zones)


def _unique(fields: Fields, name: str, pattern: re.Pattern[str], shape: str) -> tuple[str, ...]:
    values = fields.strings(name)
    for value in values:
        if not pattern.fullmatch(value):
            raise fields.error(name, f"{value!r} is not {shape}")
    if len(set(values)) != len(values):
        duplicate = next(v for v in values if values.count(v) > 1)
        raise fields.error(name, f"{duplicate!r} is listed twice")
    return values


def _region_kms_keys(fields: Fields, regions: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    keys = fields.mapping("region_kms_keys")
    for region, key in keys.items():
        if region not in regions:
            raise fields.error(
                "region_kms_keys", f"{region!r} is not in regions (the home region's key is "
                "volume.kms_key_id)"
            )  # fmt: skip
        if not isinstance(key, str) or not KMS_KEY_RE.fullmatch(key):
            raise fields.error("region_kms_keys", f"{region}: {key!r} is not {KMS_KEY_SHAPE}")
        arn_region = KMS_ARN_REGION_RE.match(key)
        if arn_region and arn_region.group(1) != region:
            raise fields.error(
                "region_kms_keys",
                f"{region}: the key {key!r} is in {arn_region.group(1)}; a copy needs a key of its "
                "own region",
            )
    return tuple(sorted((str(region), key) for region, key in keys.items()))


def _share(fields: Fields) -> Share:
    fields.reject_unknown(SHARE_FIELDS)
    shapes = {
        "accounts": (ACCOUNT_ID_RE, "a 12-digit account id"),
        "organizations": (ORGANIZATION_RE, "an organization ARN (arn:aws:organizations::...)"),
        "organizational_units": (OU_RE, "an organizational unit ARN (arn:aws:organizations::...)"),
    }
    values = {name: _unique(fields, name, *shape) for name, shape in shapes.items()}
    return Share(**values)
