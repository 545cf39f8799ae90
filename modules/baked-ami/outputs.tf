output "ami_id" {
  description = "ID of the ready AMI holding the image set."
  value       = data.external.this.result.ami_id
}

output "ami_ids" {
  description = "Region to ID of the ready AMI, for every region of the image set: the home region and those in regions."
  value       = jsondecode(data.external.this.result.ami_ids)
}

output "fingerprint" {
  description = "The image set's fingerprint (64 hex characters, scheme tfbake.fingerprint/1)."
  value       = data.external.this.result.fingerprint
}

output "status" {
  description = "\"found\" when the AMI already existed, \"baked\" when this run baked it."
  value       = data.external.this.result.status
}

output "images" {
  description = "The pinned references baked into the AMI (registry/repository:tag@sha256:...), sorted."
  value       = jsondecode(data.external.this.result.images)
}

output "base_ami" {
  description = "ID of the base AMI the image set was baked on."
  value       = data.external.this.result.base_ami
}
