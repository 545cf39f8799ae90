"""Paged DescribeImages and DescribeLaunchTemplateVersions for the sandbox.

moto returns every image in one response and ignores MaxResults, so a client that forgot to
follow NextToken would pass every test and still miss AMIs on page two in a real account; and it
cuts launch template versions off after MaxResults (15 by default) with no NextToken, so a
client that does follow it still never sees the rest. Here the sandbox pages both like EC2 does.
"""

from __future__ import annotations

from typing import Any

# DescribeLaunchTemplateVersions' page when MaxResults is not given (moto's default).
TEMPLATE_VERSIONS_PAGE = 15


def install() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.responses.amis import AmisResponse

    if getattr(AmisResponse.describe_images, "tfbake_paged", False):
        return
    _install_template_version_pages()
    unpaged = AmisResponse.describe_images

    def describe_images(self: Any) -> Any:
        max_results = self._get_int_param("MaxResults")
        token = self._get_param("NextToken")
        response: Any = unpaged(self)
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


def _install_template_version_pages() -> None:
    from moto.ec2.models.launch_templates import LaunchTemplateBackend
    from moto.ec2.responses.launch_templates import LaunchTemplates

    every_version = LaunchTemplateBackend.describe_launch_template_versions
    unpaged = LaunchTemplates.describe_launch_template_versions

    def all_versions(self: Any, **kwargs: Any) -> Any:
        # MaxResults is the page size, applied below; moto's backend treats it as a cut-off.
        return every_version(self, **{**kwargs, "max_results": 1 << 30})

    def describe_launch_template_versions(self: Any) -> Any:
        size = self._get_int_param("MaxResults") or TEMPLATE_VERSIONS_PAGE
        start = int(self._get_param("NextToken") or 0)
        response: Any = unpaged(self)
        versions = response.result["LaunchTemplateVersions"]
        response.result["LaunchTemplateVersions"] = versions[start : start + size]
        if start + size < len(versions):
            response.result["NextToken"] = str(start + size)
        return response

    LaunchTemplateBackend.describe_launch_template_versions = all_versions  # type: ignore[method-assign,assignment]
    LaunchTemplates.describe_launch_template_versions = describe_launch_template_versions  # type: ignore[method-assign]
