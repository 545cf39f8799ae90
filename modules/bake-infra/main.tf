data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  account   = data.aws_caller_identity.current.account_id
  # The tag the runbook puts on every builder instance and volume at launch; the Automation
  # role may start, stop, image and terminate only instances that carry it.
  builder_tag   = "tfbake:role"
  status_tag    = "tfbake:status"
  execution_tag = "tfbake:execution-id"

  image_arn               = "arn:${local.partition}:ec2:*::image/*"
  snapshot_arn            = "arn:${local.partition}:ec2:*::snapshot/*"
  image_and_snapshot_arns = [local.image_arn, local.snapshot_arn]

  # A workload account (bakes = false) looks AMIs up and never bakes: none of the bake's roles.
  baking      = var.bakes ? 1 : 0
  recipe_logs = var.recipe_log_group_name == null || !var.bakes ? [] : [var.recipe_log_group_name]
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
  count = local.baking

  name_prefix        = "${var.name}-builder-"
  description        = "tfbake builder instances: SSM agent, ECR pulls"
  assume_role_policy = data.aws_iam_policy_document.builder_trust.json
  tags               = var.tags
}

# What the SSM agent needs to register and run the recipe, and ECR pulls; nothing more. Not
# AmazonSSMManagedInstanceCore: it grants ssm:GetParameter(s) on every parameter of the account
# to whatever runs on the builder (provision commands, Ansible code).
data "aws_iam_policy_document" "builder" {
  statement {
    sid       = "SsmAgent"
    actions   = ["ssm:UpdateInstanceInformation", "ssmmessages:*", "ec2messages:*"]
    resources = ["*"]
  }

  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "EcrPull"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = coalesce(var.ecr_repository_arns, ["arn:${local.partition}:ecr:*:*:repository/*"])
  }
}

resource "aws_iam_role_policy" "builder" {
  count = local.baking

  name   = "builder"
  role   = aws_iam_role.builder[0].id
  policy = data.aws_iam_policy_document.builder.json
}

data "aws_iam_policy_document" "registry_credentials" {
  count = var.registry_credentials_parameter_arn == null || !var.bakes ? 0 : 1

  statement {
    actions   = ["ssm:GetParameter"]
    resources = [var.registry_credentials_parameter_arn]
  }
}

resource "aws_iam_role_policy" "registry_credentials" {
  count  = var.registry_credentials_parameter_arn == null || !var.bakes ? 0 : 1
  name   = "registry-credentials"
  role   = aws_iam_role.builder[0].id
  policy = data.aws_iam_policy_document.registry_credentials[0].json
}

# ---- the recipe's output -------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "recipe" {
  # checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts every group at rest; the recipe never prints a credential, and recipe_log_kms_key_arn adds a customer-managed key for those who want one.
  # checkov:skip=CKV_AWS_338:the output only explains a failed bake, so a month is the default; recipe_log_retention_days keeps it as long as a team needs.
  count             = length(local.recipe_logs)
  name              = var.recipe_log_group_name
  retention_in_days = var.recipe_log_retention_days
  kms_key_id        = var.recipe_log_kms_key_arn
  tags              = var.tags
}

# The SSM agent on the builder writes the recipe's output (Run Command's CloudWatchOutputConfig)
# with the instance role: its streams in this one group, and a look at which groups exist (it
# creates a missing one, which it may not: the group above exists).
data "aws_iam_policy_document" "recipe_logs" {
  count = length(local.recipe_logs)

  statement {
    sid       = "FindLogGroup"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:*:${local.account}:log-group:*"]
  }

  statement {
    sid       = "WriteRecipeOutput"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.recipe[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "recipe_logs" {
  count  = length(local.recipe_logs)
  name   = "recipe-logs"
  role   = aws_iam_role.builder[0].id
  policy = data.aws_iam_policy_document.recipe_logs[0].json
}

resource "aws_iam_instance_profile" "this" {
  count = local.baking

  name_prefix = "${var.name}-builder-"
  role        = aws_iam_role.builder[0].name
  tags        = var.tags
}

# No ingress: the recipe arrives through SSM. Egress only on HTTPS and HTTP: the AWS endpoints
# (SSM, EC2, ECR, S3) and registries over TLS, and package mirrors, some of which (Debian's)
# serve plain HTTP with signed indexes. DNS and NTP go to the VPC's own resolver and time
# service, which security groups do not filter. extra_egress adds a registry on another port.
resource "aws_security_group" "this" {
  # checkov:skip=CKV2_AWS_5:the runbook attaches this group to each builder it launches, outside Terraform.
  count = local.baking

  name_prefix = "${var.name}-builder-"
  description = "tfbake builder instances: no inbound traffic"
  vpc_id      = var.vpc_id
  tags        = var.tags

  egress {
    description = "AWS endpoints and registries over HTTPS"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = var.egress_cidr_blocks
  }

  egress {
    description = "Package mirrors over HTTP"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = var.egress_cidr_blocks
  }

  dynamic "egress" {
    for_each = var.extra_egress
    content {
      description = egress.value.description
      from_port   = egress.value.port
      to_port     = egress.value.port
      protocol    = "tcp"
      cidr_blocks = egress.value.cidr_blocks
    }
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
  count = local.baking

  name_prefix        = "${var.name}-automation-"
  description        = "tfbake bake runbook: launch, image and terminate builders"
  assume_role_policy = data.aws_iam_policy_document.automation_trust.json
  tags               = var.tags
}

data "aws_iam_policy_document" "automation" {
  count = local.baking

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
      local.image_arn,
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

  # The image and its snapshots must be tagged pending in the same request, and may be tagged
  # at creation only as part of it: no finished bake, backup or foreign AMI is pending.
  statement {
    sid       = "CreatePendingImages"
    actions   = ["ec2:CreateImage"]
    resources = local.image_and_snapshot_arns
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.status_tag}"
      values   = ["pending"]
    }
  }

  statement {
    sid       = "TagAtImageCreation"
    actions   = ["ec2:CreateTags"]
    resources = local.image_and_snapshot_arns
    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateImage"]
    }
  }

  # Later tags (the spec's, ready, failed), deregistration and snapshot deletion reach only what
  # an unfinished bake made: images and snapshots still pending (or, for the failure path's
  # deregistration, marked failed) that carry an execution id. EC2 refuses to delete a snapshot
  # that a registered AMI still uses.
  dynamic "statement" {
    for_each = {
      TagPendingImages           = { actions = ["ec2:CreateTags"], resources = local.image_and_snapshot_arns, statuses = ["pending"] }
      DeregisterFailedImages     = { actions = ["ec2:DeregisterImage"], resources = [local.image_arn], statuses = ["pending", "failed"] }
      DeleteFailedImageSnapshots = { actions = ["ec2:DeleteSnapshot"], resources = [local.snapshot_arn], statuses = ["pending"] }
    }
    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = statement.value.resources
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/${local.status_tag}"
        values   = statement.value.statuses
      }
      condition {
        test     = "Null"
        variable = "aws:ResourceTag/${local.execution_tag}"
        values   = ["false"]
      }
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
    resources = [aws_iam_role.builder[0].arn]
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
  count = local.baking

  name   = "bake"
  role   = aws_iam_role.automation[0].id
  policy = data.aws_iam_policy_document.automation[0].json
}

# ---- the caller: the principals that run tfbake (Terraform, CI) ----------------------------

# The one grant of ssm:CreateDocument on tfbake's document names. tfbake refuses a document of
# those names whose content is not its own, so a squatter cannot steer a bake, only stop it:
# grant no other principal CreateDocument, UpdateDocument or DeleteDocument on them.
data "aws_iam_policy_document" "caller" {
  count = local.baking

  statement {
    sid       = "LookUp"
    actions   = ["ec2:DescribeImages", "ec2:DescribeInstances", "ssm:DescribeAutomationExecutions"]
    resources = ["*"]
  }

  statement {
    sid     = "LockAndManifests"
    actions = ["ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter", "ssm:GetParametersByPath", "ssm:DeleteParameters"]
    resources = [
      "arn:${local.partition}:ssm:*:${local.account}:parameter/tfbake/locks/*",
      "arn:${local.partition}:ssm:*:${local.account}:parameter/tfbake/manifests/*",
    ]
  }

  statement {
    sid     = "TfbakeDocuments"
    actions = ["ssm:DescribeDocument", "ssm:CreateDocument"]
    resources = [
      "arn:${local.partition}:ssm:*:${local.account}:document/tfbake-bake-*",
      "arn:${local.partition}:ssm:*:${local.account}:document/tfbake-recipe-*",
    ]
  }

  # A base_ami given as ssm:/aws/service/... : AWS's public parameters have no account in the ARN.
  statement {
    sid       = "PublicBaseAmiParameters"
    actions   = ["ssm:GetParameter"]
    resources = ["arn:${local.partition}:ssm:*::parameter/aws/service/*"]
  }

  statement {
    sid       = "StartBakes"
    actions   = ["ssm:StartAutomationExecution"]
    resources = ["arn:${local.partition}:ssm:*:${local.account}:automation-definition/tfbake-bake-*:*"]
  }

  statement {
    sid       = "FollowBakes"
    actions   = ["ssm:GetAutomationExecution", "ssm:DescribeAutomationStepExecutions", "ssm:StopAutomationExecution"]
    resources = ["arn:${local.partition}:ssm:*:${local.account}:automation-execution/*"]
  }

  # The recipe's output for a failure report. Neither call has a resource type: "*" or nothing.
  statement {
    sid       = "ReadRecipeOutput"
    actions   = ["ssm:ListCommandInvocations", "ssm:GetCommandInvocation"]
    resources = ["*"]
  }

  # A failed bake's report: the real end of the recipe's output.
  dynamic "statement" {
    for_each = aws_cloudwatch_log_group.recipe
    content {
      sid       = "ReadBakeDetails"
      actions   = ["logs:GetLogEvents"]
      resources = ["${statement.value.arn}:*"]
    }
  }

  # `tfbake cleanup --apply`: the documents of earlier releases that no bake still reads.
  statement {
    sid       = "ListDocuments"
    actions   = ["ssm:ListDocuments"]
    resources = ["*"]
  }

  statement {
    sid     = "HousekeepTfbakeDocuments"
    actions = ["ssm:GetDocument", "ssm:DeleteDocument"]
    resources = [
      "arn:${local.partition}:ssm:*:${local.account}:document/tfbake-bake-*",
      "arn:${local.partition}:ssm:*:${local.account}:document/tfbake-recipe-*",
    ]
  }

  # The one tag a lookup writes: when it last returned the AMI (gc's grace period).
  statement {
    sid       = "RecordReturned"
    actions   = ["ec2:CreateTags"]
    resources = [local.image_arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["tfbake:last-returned"]
    }
  }

  # A builder the runbook's failure path could not terminate; the console of one that is not
  # online in SSM, to say why.
  statement {
    sid       = "TerminateLeftBuilders"
    actions   = ["ec2:TerminateInstances", "ec2:GetConsoleOutput"]
    resources = ["arn:${local.partition}:ec2:*:${local.account}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.builder_tag}"
      values   = ["builder"]
    }
  }

  statement {
    sid       = "PassAutomationRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.automation[0].arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ssm.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "caller" {
  count = local.baking

  name_prefix = "${var.name}-caller-"
  description = "tfbake: what a principal running tfbake ensure or external needs to bake"
  policy      = data.aws_iam_policy_document.caller[0].json
  tags        = var.tags
}

# ---- the lookup: what a workload account's principals need --------------------------------

# A workload account finds the image account's AMI with DescribeImages alone (docs/bake.md,
# "Across accounts"). Launching it also needs the image account's KMS key (modules/baked-ami's
# README, "Many accounts"), which that key's policy grants.
data "aws_iam_policy_document" "lookup" {
  statement {
    sid       = "LookUp"
    actions   = ["ec2:DescribeImages"]
    resources = ["*"]
  }
}

resource "aws_iam_policy" "lookup" {
  name_prefix = "${var.name}-lookup-"
  description = "tfbake: what a principal needs to look up baked AMIs (tfbake check, external with on_missing = fail)"
  policy      = data.aws_iam_policy_document.lookup.json
  tags        = var.tags
}
