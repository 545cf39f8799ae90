"""Inputs to pinned inputs: the base AMI to an id and architecture, image tags to registry
digests (with the registry credentials that needs)."""
