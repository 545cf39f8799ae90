# The image account: bakes the image set, encrypted with its own key, and shares the AMI with
# the workload account. Run with the image account's credentials.

data "aws_caller_identity" "current" {}

# The key the AMI's snapshots are encrypted with. AWS cannot share an AMI encrypted with the
# AWS-managed EBS key; the workload account launches it through this key's policy.
resource "aws_kms_key" "images" {
  description             = "tfbake: baked AMIs shared with the workload accounts"
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.images_key.json
}

data "aws_iam_policy_document" "images_key" {
  statement {
    sid       = "ImageAccount"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  # What launching an encrypted AMI takes in the workload account: EC2 decrypts the snapshot
  # and creates a grant for the new volume on the launching principal's behalf.
  statement {
    sid       = "WorkloadAccountsLaunch"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:CreateGrant", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [for account in var.workload_account_ids : "arn:aws:iam::${account}:root"]
    }
  }
}

module "image_set" {
  source = "../image-set"

  kms_key_arn = aws_kms_key.images.arn
}

module "bake_infra" {
  source = "../../../modules/bake-infra"

  name               = "images"
  volume_kms_key_arn = aws_kms_key.images.arn
}

module "web_ami" {
  source = "../../../modules/baked-ami"

  name           = module.image_set.definition.name
  images         = module.image_set.definition.images
  base_ami       = module.image_set.definition.base_ami
  architecture   = module.image_set.definition.architecture
  volume         = module.image_set.definition.volume
  builder        = module.bake_infra.builder
  share          = { accounts = var.workload_account_ids }
  tfbake_command = var.tfbake_command
}
