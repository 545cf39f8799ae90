# The asg module alone, on an AMI registered by the test: its launch template's root volume.

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

variable "ami_id" {
  type = string
}

variable "volume_initialization_rate" {
  type    = number
  default = null
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

module "fleet" {
  source = "../../../modules/asg"

  name                       = "first-read"
  ami_id                     = var.ami_id
  baked_images               = ["registry.example/app:1"]
  subnet_ids                 = data.aws_subnets.default.ids
  min_size                   = 0
  max_size                   = 1
  desired_capacity           = 0
  wait_for_capacity_timeout  = "0"
  instance_refresh           = null
  volume_initialization_rate = var.volume_initialization_rate

  containers = {
    app = { image = "registry.example/app:1" }
  }
}

output "launch_template_id" {
  value = module.fleet.launch_template_id
}
