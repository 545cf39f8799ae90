variable "region" {
  description = "Region of the sandbox account."
  type        = string
  default     = "us-east-1"
}

variable "salt" {
  description = "Passed to the image set: changing it gives a new fingerprint, so a new bake and a new launch template version."
  type        = string
  default     = ""
}

variable "images" {
  description = "The images to bake. Pinned by digest, so the fingerprint needs no registry."
  type        = list(string)
  default = [
    "nginx:1.27@sha256:6784fb0834aa7dbbe12e3d7471e69c290df3e6ba810dc38b34ae33d3c1c05f7d",
    "redis:7.4@sha256:bbf7b8d3d6be53c5dbfbc6b2b1b9a6c4b63e82a0ac1d5e3ad1e1ae8d64d1c7b1",
    "gcr.io/cadvisor/cadvisor:v0.49.1@sha256:3cde6faf0791ebf7b41d6f8ae7145466fed712ea6f252c935294d2608b1af388",
  ]
}

variable "tfbake_command" {
  description = "How to run tfbake, e.g. [\"python3\", \"-m\", \"tfbake\"] for a checkout without the tfbake script on PATH."
  type        = list(string)
  default     = ["tfbake"]
}

variable "instance_refresh" {
  description = "Roll the group's instances when the launch template changes (the sandbox records the refresh and completes it at once)."
  type        = bool
  default     = true
}

variable "base_ami" {
  description = "The base AMI. The default is Amazon Linux 2023's public parameter; with real instances (`tfbake sandbox --instances real`) a seeded Debian root, e.g. jsonencode({owners = [\"136693071363\"], name = \"debian-12-amd64-*\"})."
  type        = string
  default     = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

variable "containers" {
  description = "The group's containers (the asg module's containers). Null runs the three default images: web, cache and cadvisor."
  type = map(object({
    image   = string
    ports   = optional(list(string), [])
    command = optional(list(string), [])
    network = optional(string)
  }))
  default = null
}
