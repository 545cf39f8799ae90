"""Launch template fields newer than the EC2 API model moto serves: VolumeInitializationRate.

moto parses requests and writes responses through botocore's EC2 model, and the botocore here
predates EBS's provisioned volume initialization rate (launch templates'
`BlockDeviceMappings[].Ebs.VolumeInitializationRate`, 100-300 MiB/s). moto would drop the field
on the way in, so DescribeLaunchTemplateVersions would never return what Terraform set, and
every plan would show the launch template changing. The member is added to moto's copy of the
model, request and response side, once, before the first request: moto then stores and returns
it like any other field of the template's data.
"""

from __future__ import annotations

from typing import Any

# (shape, member) as in botocore's newer EC2 models; responses name members in camel case.
_MEMBERS: dict[str, dict[str, Any]] = {
    "LaunchTemplateEbsBlockDeviceRequest": {"shape": "Integer"},
    "LaunchTemplateEbsBlockDevice": {
        "shape": "Integer",
        "locationName": "volumeInitializationRate",
    },
}
FIELD = "VolumeInitializationRate"


def install() -> None:
    from moto.core.utils import get_service_model

    # The model moto reads is the one cached object; its shapes are built from this map lazily.
    shapes = get_service_model("ec2")._shape_resolver._shape_map
    for shape, member in _MEMBERS.items():
        shapes[shape]["members"].setdefault(FIELD, member)
