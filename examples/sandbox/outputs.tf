output "ami_id" {
  description = "The baked AMI."
  value       = module.web_ami.ami_id
}

output "fingerprint" {
  description = "The image set's fingerprint."
  value       = module.web_ami.fingerprint
}

output "images" {
  description = "The pinned references baked in."
  value       = module.web_ami.images
}

output "launch_template_id" {
  description = "The launch template of the group."
  value       = module.web.launch_template_id
}

output "launch_template_version" {
  description = "Its latest version."
  value       = module.web.launch_template_version
}

output "autoscaling_group_name" {
  description = "The autoscaling group."
  value       = module.web.autoscaling_group_name
}
