output "builder" {
  description = "The baked-ami module's builder settings for this infrastructure: pass it as builder (merge() to add a subnet or instance type)."
  value = {
    instance_profile    = aws_iam_instance_profile.this.name
    automation_role_arn = aws_iam_role.automation.arn
    security_group_ids  = [aws_security_group.this.id]
    log_group           = var.recipe_log_group_name
  }
}

output "instance_profile" {
  description = "Name of the builder's instance profile."
  value       = aws_iam_instance_profile.this.name
}

output "builder_role_arn" {
  description = "ARN of the builder's IAM role."
  value       = aws_iam_role.builder.arn
}

output "automation_role_arn" {
  description = "ARN of the role the bake runbook assumes."
  value       = aws_iam_role.automation.arn
}

output "security_group_id" {
  description = "ID of the builder's security group (no ingress)."
  value       = aws_security_group.this.id
}

output "caller_policy_arn" {
  description = "ARN of the managed policy with what a principal running tfbake needs to bake (attach it to your Terraform and CI roles); the only grant of ssm:CreateDocument on tfbake's documents."
  value       = aws_iam_policy.caller.arn
}
