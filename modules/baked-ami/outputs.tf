output "ami_id" {
  description = "ID of the ready AMI holding the image set: known at plan when it exists, after the bake otherwise."
  value       = local.result.ami_id

  # Whatever launches the AMI waits for the bake resource: an AMI the plan found and that was
  # invalidated before the apply fails the bake resource, and never reaches a launch template.
  depends_on = [terraform_data.bake]
}

output "ami_ids" {
  description = "Region to ID of the ready AMI, for every region of the image set: the home region and those in regions."
  value       = jsondecode(local.result.ami_ids)
}

output "fingerprint" {
  description = "The image set's fingerprint (64 hex characters, scheme tfbake.fingerprint/1)."
  value       = local.result.fingerprint
}

output "status" {
  description = "\"found\" when the plan found the AMI, \"baked\" when the apply baked it (or waited for another run's bake of it)."
  value       = local.found ? "found" : "baked"
}

output "images" {
  description = "The pinned references baked into the AMI (registry/repository:tag@sha256:...), sorted."
  value       = jsondecode(local.result.images)
}

output "base_ami" {
  description = "ID of the base AMI the image set was baked on."
  value       = local.result.base_ami
}
