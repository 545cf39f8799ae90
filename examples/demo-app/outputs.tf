output "ami_id" {
  description = "The baked AMI."
  value       = module.demo_ami.ami_id
}

output "fingerprint" {
  description = "The image set's fingerprint."
  value       = module.demo_ami.fingerprint
}

output "images" {
  description = "The pinned references baked in."
  value       = module.demo_ami.images
}

output "autoscaling_group_name" {
  description = "The autoscaling group running the containers."
  value       = module.demo.autoscaling_group_name
}
