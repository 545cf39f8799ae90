data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id
  # The tag the runbook puts on every builder instance and volume at launch; the Automation
  # role may start, stop, image and terminate only instances that carry it.
  builder_tag = "tfbake:role"
}

# ---- the builder instance ------------------------------------------------------------------

data "aws_iam_policy_document" "builder_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "builder" {
  name_prefix        = "${var.name}-builder-"
  description        = "tfbake builder instances: SSM agent, ECR pulls"
  assume_role_policy = data.aws_iam_policy_document.builder_trust.json
  tags               = var.tags
}

# The SSM agent must register for the runbook to send the recipe; ECR pulls use the role.
resource "aws_iam_role_policy_attachment" "builder" {
  for_each = toset([
    "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
    "arn:${local.partition}:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
  ])
  role       = aws_iam_role.builder.name
  policy_arn = each.value
}

data "aws_iam_policy_document" "registry_credentials" {
  count = var.registry_credentials_parameter_arn == null ? 0 : 1

  statement {
    actions   = ["ssm:GetParameter"]
    resources = [var.registry_credentials_parameter_arn]
  }
}

resource "aws_iam_role_policy" "registry_credentials" {
  count  = var.registry_credentials_parameter_arn == null ? 0 : 1
  name   = "registry-credentials"
  role   = aws_iam_role.builder.id
  policy = data.aws_iam_policy_document.registry_credentials[0].json
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${var.name}-builder-"
  role        = aws_iam_role.builder.name
  tags        = var.tags
}

# No ingress: the recipe arrives through SSM. Egress to any address: registries and the
# AWS endpoints the agent talks to.
resource "aws_security_group" "this" {
  name_prefix = "${var.name}-builder-"
  description = "tfbake builder instances: no inbound traffic"
  vpc_id      = var.vpc_id
  tags        = var.tags

  egress {
    description = "Registries and AWS endpoints"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

# ---- the Automation service role -----------------------------------------------------------

data "aws_iam_policy_document" "automation_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ssm.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "automation" {
  name_prefix        = "${var.name}-automation-"
  description        = "tfbake bake runbook: launch, image and terminate builders"
  assume_role_policy = data.aws_iam_policy_document.automation_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "automation" {
  statement {
    sid       = "Describe"
    actions   = ["ec2:DescribeImages", "ec2:DescribeInstances", "ec2:DescribeInstanceStatus", "ssm:DescribeInstanceInformation", "ssm:ListCommands", "ssm:ListCommandInvocations", "ssm:GetCommandInvocation"]
    resources = ["*"]
  }

  # RunInstances authorises each resource it touches; new instances and volumes only when
  # they are tagged as builders in the same request.
  statement {
    sid     = "LaunchTaggedBuilders"
    actions = ["ec2:RunInstances"]
    resources = [
      "arn:${local.partition}:ec2:*:${local.account}:instance/*",
      "arn:${local.partition}:ec2:*:${local.account}:volume/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.builder_tag}"
      values   = ["builder"]
    }
  }

  statement {
    sid     = "LaunchFromImagesIntoNetwork"
    actions = ["ec2:RunInstances"]
    resources = [
      "arn:${local.partition}:ec2:*::image/*",
      "arn:${local.partition}:ec2:*:${local.account}:subnet/*",
      "arn:${local.partition}:ec2:*:${local.account}:security-group/*",
      "arn:${local.partition}:ec2:*:${local.account}:network-interface/*",
    ]
  }

  statement {
    sid     = "TagAtLaunch"
    actions = ["ec2:CreateTags"]
    resources = [
      "arn:${local.partition}:ec2:*:${local.account}:instance/*",
      "arn:${local.partition}:ec2:*:${local.account}:volume/*",
    ]
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["RunInstances"]
    }
  }

  statement {
    sid       = "ControlBuilders"
    actions   = ["ec2:StopInstances", "ec2:TerminateInstances", "ec2:CreateImage"]
    resources = ["arn:${local.partition}:ec2:*:${local.account}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.builder_tag}"
      values   = ["builder"]
    }
  }

  statement {
    sid     = "CreateAndTagImages"
    actions = ["ec2:CreateImage", "ec2:CreateTags"]
    resources = [
      "arn:${local.partition}:ec2:*::image/*",
      "arn:${local.partition}:ec2:*::snapshot/*",
    ]
  }

  # Only images this runbook created (they carry tfbake:fingerprint from their first moment).
  statement {
    sid       = "DeregisterFailedImages"
    actions   = ["ec2:DeregisterImage"]
    resources = ["arn:${local.partition}:ec2:*::image/*"]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/tfbake:fingerprint"
      values   = ["false"]
    }
  }

  # With its snapshots (DeleteAssociatedSnapshots), tagged by the runbook at CreateImage.
  statement {
    sid       = "DeleteFailedImageSnapshots"
    actions   = ["ec2:DeleteSnapshot"]
    resources = ["arn:${local.partition}:ec2:*::snapshot/*"]
    condition {
      test     = "Null"
      variable = "aws:ResourceTag/tfbake:fingerprint"
      values   = ["false"]
    }
  }

  statement {
    sid       = "SendRecipe"
    actions   = ["ssm:SendCommand"]
    resources = ["arn:${local.partition}:ssm:*:${local.account}:document/tfbake-recipe-*"]
  }

  statement {
    sid       = "SendRecipeToBuilders"
    actions   = ["ssm:SendCommand"]
    resources = ["arn:${local.partition}:ec2:*:${local.account}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "ssm:resourceTag/${local.builder_tag}"
      values   = ["builder"]
    }
  }

  statement {
    sid       = "PassBuilderRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.builder.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ec2.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = var.volume_kms_key_arn == null ? [] : [var.volume_kms_key_arn]
    content {
      sid       = "EncryptVolumes"
      actions   = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:ReEncrypt*"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "automation" {
  name   = "bake"
  role   = aws_iam_role.automation.id
  policy = data.aws_iam_policy_document.automation.json
}
