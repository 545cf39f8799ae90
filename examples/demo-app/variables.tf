variable "region" {
  description = "AWS region to bake and run in."
  type        = string
  default     = "eu-west-1"
}

variable "subnet_ids" {
  description = "Subnets of the autoscaling group (and the first one for the builder). Empty uses the default VPC's subnets."
  type        = list(string)
  default     = []
}

variable "images" {
  description = "The image set: BuildKit (Docker's image builder), classic Swarm and cAdvisor. Tags are resolved to digests at plan time."
  type        = list(string)
  default = [
    "moby/buildkit:v0.16.0",
    "swarm:1.2.9",
    "gcr.io/cadvisor/cadvisor:v0.49.1",
  ]
}

variable "instance_type" {
  description = "Instance type of the group."
  type        = string
  default     = "t3.small"
}
