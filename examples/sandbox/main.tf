# The whole flow against the local sandbox (`tfbake sandbox`): bake infrastructure, the image
# set, and an autoscaling group whose instances start the baked containers.

data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }
}

module "bake_infra" {
  source = "../../modules/bake-infra"

  name = "sandbox"
}

module "web_ami" {
  source = "../../modules/baked-ami"

  name           = "sandbox-web"
  images         = var.images
  base_ami       = var.base_ami
  architecture   = "x86_64"
  provision      = ["echo 'baked by tfbake' > /etc/motd"]
  salt           = var.salt
  builder        = module.bake_infra.builder
  tags           = { example = "sandbox" }
  tfbake_command = var.tfbake_command
}

module "web" {
  source = "../../modules/asg"

  name         = "sandbox-web"
  ami_id       = module.web_ami.ami_id
  baked_images = module.web_ami.images
  subnet_ids   = data.aws_subnets.default.ids
  # The sandbox starts instances at once; nothing to wait for.
  wait_for_capacity_timeout = "0"
  instance_refresh          = var.instance_refresh ? {} : null

  containers = local.containers
}

locals {
  # The default containers run the default images; var.containers replaces them (the real
  # instances demo serves a page from its own image).
  default_settings = {
    web = {
      ports      = ["80:80"]
      volumes    = []
      privileged = false
    }
    cache = {
      ports      = ["127.0.0.1:6379:6379"]
      volumes    = []
      privileged = false
    }
    cadvisor = {
      ports      = ["8080:8080"]
      volumes    = ["/:/rootfs:ro", "/var/run:/var/run:ro", "/sys:/sys:ro", "/var/lib/docker/:/var/lib/docker:ro"]
      privileged = true
    }
  }
  # One default container per default image, in order.
  default_containers = {
    for i, name in ["web", "cache", "cadvisor"] : name => merge(local.default_settings[name], {
      image   = var.images[i]
      command = []
      network = null
    }) if i < length(var.images)
  }
  containers = var.containers == null ? local.default_containers : {
    for name, c in var.containers : name => {
      image      = c.image
      ports      = c.ports
      volumes    = []
      privileged = false
      command    = c.command
      network    = c.network
    }
  }
}
