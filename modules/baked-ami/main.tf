data "aws_region" "current" {}

locals {
  # The external data source takes a map of strings: lists and maps travel jsonencoded, and
  # values not given travel as "" (tfbake reads "" as "not given"; Terraform would drop a null).
  query = {
    protocol                       = "1"
    name                           = var.name
    images                         = jsonencode(var.images)
    base_ami                       = var.base_ami
    architecture                   = var.architecture == null ? "" : var.architecture
    volume                         = jsonencode(var.volume)
    provision                      = jsonencode(var.provision)
    salt                           = var.salt
    tags                           = jsonencode(var.tags)
    builder                        = jsonencode(var.builder)
    ami_owners                     = jsonencode(var.ami_owners)
    insecure_registries            = jsonencode(var.insecure_registries)
    registry_credentials_parameter = var.registry_credentials_parameter == null ? "" : var.registry_credentials_parameter
    region                         = var.region == null ? data.aws_region.current.name : var.region
    on_missing                     = var.on_missing
  }
}

# Runs on every plan and apply: a lookup by fingerprint when the AMI exists (one DescribeImages),
# a bake through SSM Automation when it does not. The bake is content-addressed, so reading
# again with the same inputs returns the same AMI.
data "external" "this" {
  program = concat(var.tfbake_command, ["external"])
  query   = local.query
}
