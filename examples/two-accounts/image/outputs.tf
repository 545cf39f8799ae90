output "ami_id" {
  description = "The baked AMI, shared with the workload accounts."
  value       = module.web_ami.ami_id
}

output "fingerprint" {
  description = "The image set's fingerprint."
  value       = module.web_ami.fingerprint
}

output "account_id" {
  description = "The image account: the workload accounts' ami_owners."
  value       = data.aws_caller_identity.current.account_id
}

output "kms_key_arn" {
  description = "The key the AMI is encrypted with: part of the image set, so the workload accounts name it too."
  value       = aws_kms_key.images.arn
}
