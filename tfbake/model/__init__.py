"""Pure values: references, the image set, the plan and its result, the AMI record, the
fingerprint, tags, and every limit and pattern of the wire formats.

Imports nothing else of tfbake."""
