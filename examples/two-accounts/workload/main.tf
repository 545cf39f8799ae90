# The workload account: finds the image account's AMI of the image set and launches it. It
# trusts the image account alone (ami_owners, without self), so it never bakes: a missing AMI
# fails its plan. Run with the workload account's credentials.

module "image_set" {
  source = "../image-set"

  kms_key_arn = var.image_kms_key_arn
}

# Only the lookup policy (ec2:DescribeImages) for this account's Terraform and CI roles: no
# builder, no Automation role.
module "bake_infra" {
  source = "../../../modules/bake-infra"

  name  = "workload"
  bakes = false
}

module "web_ami" {
  source = "../../../modules/baked-ami"

  name           = module.image_set.definition.name
  images         = module.image_set.definition.images
  base_ami       = module.image_set.definition.base_ami
  architecture   = module.image_set.definition.architecture
  volume         = module.image_set.definition.volume
  ami_owners     = [var.image_account_id]
  tfbake_command = var.tfbake_command
}

resource "aws_launch_template" "web" {
  name_prefix   = "web-"
  image_id      = module.web_ami.ami_id
  instance_type = "t3.micro"

  metadata_options {
    http_tokens = "required"
  }
}
