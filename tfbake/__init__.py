"""tfbake: an AMI with pre-pulled Docker images, baked only when its contents change."""

__version__ = "0.2.0"
