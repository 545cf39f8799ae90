"""The states of an AMI that other accounts see change: disabled, deprecated, described.

moto has no DisableImage, EnableImage, EnableImageDeprecation or DisableImageDeprecation, and
its ModifyImageAttribute ignores Description. As EC2 does: disabling an AMI makes it private
(every launch permission goes, and does not come back with EnableImage) and hides it from
DescribeImages unless IncludeDisabled; a deprecation time is shown as DeprecationTime, and past
it the AMI is no longer listed to other accounts (shared_images.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

AVAILABLE = "available"
DISABLED = "disabled"


def install() -> None:
    from moto.ec2.responses import EC2Response
    from moto.ec2.responses.amis import AmisResponse

    if getattr(EC2Response, "tfbake_image_states", False):
        return
    EC2Response.disable_image = _disable_image  # type: ignore[attr-defined]
    EC2Response.enable_image = _enable_image  # type: ignore[attr-defined]
    EC2Response.enable_image_deprecation = _enable_deprecation  # type: ignore[attr-defined]
    EC2Response.disable_image_deprecation = _disable_deprecation  # type: ignore[attr-defined]
    AmisResponse.modify_image_attribute = _describing(AmisResponse.modify_image_attribute)  # type: ignore[method-assign]
    EC2Response.tfbake_image_states = True  # type: ignore[attr-defined]


def _own_image(response: Any) -> Any:
    from moto.ec2.exceptions import InvalidAMIIdError

    ami_id = response._get_param("ImageId")
    response.error_on_dryrun()
    image = response.ec2_backend.amis.get(ami_id)
    if image is None:
        raise InvalidAMIIdError(ami_id)
    return image


def _disable_image(self: Any) -> Any:
    from moto.core.responses import ActionResult

    image = _own_image(self)
    image.state = DISABLED
    image.launch_permissions.clear()
    return ActionResult({"Return": True})


def _enable_image(self: Any) -> Any:
    from moto.core.responses import ActionResult

    image = _own_image(self)
    image.state = AVAILABLE
    return ActionResult({"Return": True})


def _enable_deprecation(self: Any) -> Any:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidParameterValueError

    image = _own_image(self)
    text = self._get_param("DeprecateAt")
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameterValueError(f"DeprecateAt {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # EC2 keeps the time to the minute and shows it in UTC with milliseconds.
    moment = moment.astimezone(timezone.utc).replace(second=0, microsecond=0)
    image.deprecation_time = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return ActionResult({"Return": True})


def _disable_deprecation(self: Any) -> Any:
    from moto.core.responses import ActionResult

    image = _own_image(self)
    image.deprecation_time = None
    return ActionResult({"Return": True})


def _describing(modify_image_attribute: Any) -> Any:
    def modify_description_too(self: Any) -> Any:
        value = self._get_param("Description.Value")
        if value is None and self._get_param("Attribute") == "description":
            value = self._get_param("Value")
        if value is None:
            return modify_image_attribute(self)
        from moto.core.responses import EmptyResult

        _own_image(self).description = value
        return EmptyResult()

    return modify_description_too
