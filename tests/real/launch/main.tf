# Two instances of a baked AMI, started by the asg module's own launch template user data.

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

variable "baked_images" {
  type = list(string)
}

variable "web_image" {
  type = string
}

variable "worker_image" {
  type = string
}

variable "multi_image" {
  type = string
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
  source = "../modules/asg"

  name                      = "real-launch"
  ami_id                    = var.ami_id
  baked_images              = var.baked_images
  subnet_ids                = data.aws_subnets.default.ids
  min_size                  = 2
  max_size                  = 2
  desired_capacity          = 2
  wait_for_capacity_timeout = "0"
  # Its agent needs credentials to register with SSM, through which the test looks inside.
  iam_instance_profile = "tfbake-builder"
  # No ECS agent runs here: the test reads the configuration the agent would start with.
  ecs = { cluster = "real-launch", settings = { ECS_ENABLE_TASK_IAM_ROLE = "true" } }

  containers = {
    worker = { image = var.worker_image, command = ["sleep", "3600"] }
    multi  = { image = var.multi_image, command = ["sleep", "3600"] }
    # Machines share one network; each web container listens on its own loopback address.
    web = { image = var.web_image, command = ["sleep", "3600"] }
  }
}
