output "launch_template_id" {
  description = "ID of the launch template."
  value       = aws_launch_template.this.id
}

output "launch_template_version" {
  description = "The launch template's latest version, the one the group launches."
  value       = aws_launch_template.this.latest_version
}

output "autoscaling_group_name" {
  description = "Name of the autoscaling group."
  value       = aws_autoscaling_group.this.name
}

output "autoscaling_group_arn" {
  description = "ARN of the autoscaling group."
  value       = aws_autoscaling_group.this.arn
}

output "user_data" {
  description = "The instances' user data: a cloud-init boothook (before base64 encoding)."
  value       = local.user_data
}
