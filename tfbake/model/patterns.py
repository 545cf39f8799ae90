"""The patterns that more than one layer checks a value against, each in one place.

A pattern used by one module alone stays beside its use (the spec's own fields, the reference
grammar in model/reference.py). Those here are shared: by the spec and the calls that take the
value, or by tfbake and the SSM documents that fence the same value again on AWS's side.
"""

from __future__ import annotations

import re

from tfbake.model.chunks import IMAGES, SLICE_CHARACTERS

REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]{1,2}")
ACCOUNT_ID_RE = re.compile(r"[0-9]{12}")
# An AMI id as EC2 writes it.
AMI_ID_RE = re.compile(r"ami-[0-9a-f]{8}(?:[0-9a-f]{9})?")
AMI_ID_SHAPE = "ami- and then 8 or 17 lower-case hex digits"
# An SSM Automation execution id, and the ClientToken a bake starts with (a UUID, as SSM
# requires): both as AWS and tfbake write them.
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
EXECUTION_ID_RE = re.compile(_UUID)
CLIENT_TOKEN_RE = re.compile(_UUID)

# The four ways EC2 accepts a KMS key: key id (a UUID, or mrk- and 32 hex digits for a
# multi-Region key), key ARN, alias name, alias ARN. Anything else EC2 refuses mid-bake.
_KMS_KEY_ID = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
_KMS_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
_KMS_ARN = r"arn:aws[a-z-]*:kms:[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}:[0-9]{12}:"
KMS_KEY_RE = re.compile(rf"{_KMS_KEY_ID}|{_KMS_ALIAS}|{_KMS_ARN}(?:key/{_KMS_KEY_ID}|{_KMS_ALIAS})")
KMS_KEY_SHAPE = "a KMS key id, key ARN, alias name (alias/...) or alias ARN"

# allowedPattern is checked twice with two regex engines: by SSM at the API with Java's, which
# recurses per repetition of a quantified group and overflows its stack on long values, and by
# the agent with Go's RE2, which refuses a repetition count above 1000. So every pattern is
# flat: character classes, bounded repetition of at most 1000, alternation of anchored
# branches, no quantified group. The grammar of each value is held by tfbake before the call
# (reference.check_pinned_form, reference.ECR_HOST_RE, PLAYBOOK_RE) and by recipe.sh on the
# builder; the patterns fence the alphabet.
IMAGES_PATTERN = rf"^[{IMAGES.characters}]+$"
ECR_REGISTRIES_PATTERN = r"^[0-9a-z. -]*$"
# A playbook path inside the Ansible bundle (tfbake.spec.ansible checks specs against it too).
PLAYBOOK_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]*(/[A-Za-z0-9_][A-Za-z0-9_.@+-]*){0,31}")
PLAYBOOK_PATTERN = rf"^[A-Za-z0-9_.@+/-]{{0,{SLICE_CHARACTERS}}}$"

# A containerd namespace, as containerd's identifiers package accepts it: alphanumeric words
# joined by single '.', '_' or '-', at most 76 characters.
CONTAINERD_NAMESPACE_RE = re.compile(r"(?=.{1,76}$)[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
# Empty: the default namespace, k8s.io.
CONTAINERD_NAMESPACE_PATTERN = r"^[A-Za-z0-9._-]{0,76}$"
