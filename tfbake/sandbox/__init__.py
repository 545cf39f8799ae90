"""A local AWS endpoint for demos and tests: moto's server plus what moto lacks for tfbake."""

from tfbake.sandbox.server import Sandbox, start_sandbox

__all__ = ["Sandbox", "start_sandbox"]
