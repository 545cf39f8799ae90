# The image set both accounts name. The workload account computes the same fingerprint from the
# same definition; one home for it keeps the two roots from drifting apart.

variable "kms_key_arn" {
  description = "The image account's customer-managed key that encrypts the AMI (a fingerprint input)."
  type        = string
}

output "definition" {
  description = "The baked-ami module's image set arguments."
  value = {
    name         = "web"
    images       = ["nginx:1.27@sha256:6784fb0834aa7dbbe12e3d7471e69c290df3e6ba810dc38b34ae33d3c1c05f7d"]
    base_ami     = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    architecture = "x86_64"
    volume       = { kms_key_id = var.kms_key_arn }
  }
}
