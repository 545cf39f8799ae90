# The classic demo of pre-baked containers: instances that start BuildKit, Swarm and cAdvisor
# from local layers at boot instead of pulling them.

data "aws_vpc" "default" {
  count   = length(var.subnet_ids) == 0 ? 1 : 0
  default = true
}

data "aws_subnets" "default" {
  count = length(var.subnet_ids) == 0 ? 1 : 0
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default[0].id]
  }
}

locals {
  subnet_ids = length(var.subnet_ids) > 0 ? var.subnet_ids : data.aws_subnets.default[0].ids
}

module "bake_infra" {
  source = "../../modules/bake-infra"

  name = "demo-app"
  tags = { app = "demo-app" }
}

module "demo_ami" {
  source = "../../modules/baked-ami"

  name         = "demo-app"
  images       = var.images
  base_ami     = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
  architecture = "x86_64"
  volume       = { size = 30 }
  builder      = merge(module.bake_infra.builder, { subnet_id = local.subnet_ids[0] })
  tags         = { app = "demo-app" }
}

module "demo" {
  source = "../../modules/asg"

  name             = "demo-app"
  ami_id           = module.demo_ami.ami_id
  baked_images     = module.demo_ami.images
  subnet_ids       = local.subnet_ids
  instance_type    = var.instance_type
  min_size         = 1
  max_size         = 3
  desired_capacity = 1
  tags             = { app = "demo-app" }

  containers = {
    buildkitd = {
      image      = var.images[0]
      command    = ["--addr", "tcp://127.0.0.1:1234"]
      privileged = true
    }
    swarm = {
      image   = var.images[1]
      ports   = ["127.0.0.1:4000:4000"]
      command = ["manage", "--host", "0.0.0.0:4000", "nodes://127.0.0.1:2375"]
    }
    cadvisor = {
      image      = var.images[2]
      ports      = ["8080:8080"]
      volumes    = ["/:/rootfs:ro", "/var/run:/var/run:ro", "/sys:/sys:ro", "/var/lib/docker/:/var/lib/docker:ro"]
      privileged = true
    }
  }
}
