# bench_spinup.py's launch templates: one asg module per image set, its group empty. The
# benchmark launches from each template itself, to time RunInstances to running containers.

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

provider "aws" {
  region = "us-east-1"

  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}

variable "sets" {
  description = "Per image set: the baked AMI, the baked images (the bake's images) and the containers' images."
  type = map(object({
    ami_id       = string
    baked_images = list(string)
    images       = list(string)
  }))
}

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

module "set" {
  source   = "../../modules/asg"
  for_each = var.sets

  name                      = "spinup-${each.key}"
  ami_id                    = each.value.ami_id
  baked_images              = each.value.baked_images
  subnet_ids                = data.aws_subnets.default.ids
  min_size                  = 0
  max_size                  = 1
  desired_capacity          = 0
  wait_for_capacity_timeout = "0"
  instance_refresh          = null
  # The agent registers with it: the benchmark reads each instance's timings by Run Command.
  iam_instance_profile = "tfbake-builder"

  # A shell that ends on SIGTERM: busybox sleep as PID 1 ignores it, and every termination
  # would wait out docker stop's 10 s.
  containers = {
    for i, image in each.value.images : "app${i}" => {
      image   = image
      command = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    }
  }
}

output "launch_templates" {
  value = { for name, set in module.set : name => set.launch_template_id }
}

output "user_data" {
  value = { for name, set in module.set : name => set.user_data }
}
