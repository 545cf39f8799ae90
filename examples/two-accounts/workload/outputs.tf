output "ami_id" {
  description = "The image account's AMI this account launches."
  value       = module.web_ami.ami_id
}

output "launch_template_id" {
  description = "The launch template that uses it."
  value       = aws_launch_template.web.id
}

output "lookup_policy_arn" {
  description = "Attach to this account's Terraform and CI roles: all a lookup needs."
  value       = module.bake_infra.lookup_policy_arn
}
