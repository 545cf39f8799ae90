"""Paged DescribeImages for the sandbox.

moto returns every image in one response and ignores MaxResults, so a client that forgot to
follow NextToken would pass every test and still miss AMIs on page two in a real account. Here
the sandbox pages like EC2 does.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.responses.amis import AmisResponse

    if getattr(AmisResponse.describe_images, "tfbake_paged", False):
        return
    unpaged = AmisResponse.describe_images

    def describe_images(self: Any) -> Any:
        max_results = self._get_int_param("MaxResults")
        token = self._get_param("NextToken")
        response = unpaged(self)
        if not max_results and not token:
            return response
        images = sorted(response.result["Images"], key=lambda image: image.id)
        start = int(token) if token else 0
        end = start + (max_results or len(images))
        result: dict[str, Any] = {"Images": images[start:end]}
        if end < len(images):
            result["NextToken"] = str(end)
        return ActionResult(result)

    describe_images.tfbake_paged = True  # type: ignore[attr-defined]
    AmisResponse.describe_images = describe_images  # type: ignore[method-assign]
