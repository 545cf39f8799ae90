output "builder" {
  description = "The baked-ami module's builder settings for this infrastructure: pass it as builder (merge() to add a subnet or instance type)."
  value = var.bakes ? {
    instance_profile    = aws_iam_instance_profile.this[0].name
    automation_role_arn = aws_iam_role.automation[0].arn
    security_group_ids  = [aws_security_group.this[0].id]
    log_group           = var.recipe_log_group_name
  } : null
}

output "instance_profile" {
  description = "Name of the builder's instance profile."
  value       = one(aws_iam_instance_profile.this[*].name)
}

output "builder_role_arn" {
  description = "ARN of the builder's IAM role."
  value       = one(aws_iam_role.builder[*].arn)
}

output "automation_role_arn" {
  description = "ARN of the role the bake runbook assumes."
  value       = one(aws_iam_role.automation[*].arn)
}

output "security_group_id" {
  description = "ID of the builder's security group (no ingress)."
  value       = one(aws_security_group.this[*].id)
}

output "caller_policy_arn" {
  description = "ARN of the managed policy with what a principal running tfbake needs to bake (attach it to your Terraform and CI roles); the only grant of ssm:CreateDocument on tfbake's documents."
  value       = one(aws_iam_policy.caller[*].arn)
}

output "lookup_policy_arn" {
  description = "ARN of the managed policy with only what a lookup needs (ec2:DescribeImages): attach it to a workload account's Terraform and CI roles, which find the image account's AMI and never bake."
  value       = aws_iam_policy.lookup.arn
}
