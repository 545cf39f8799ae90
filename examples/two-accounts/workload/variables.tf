variable "region" {
  description = "Region of the workload; the image account's AMI must be shared in it."
  type        = string
  default     = "us-east-1"
}

variable "image_account_id" {
  description = "The image account, the only owner whose AMIs this account trusts."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.image_account_id))
    error_message = "image_account_id must be a 12-digit account ID."
  }
}

variable "image_kms_key_arn" {
  description = "The image account's key that encrypts the AMI (its kms_key_arn output)."
  type        = string
}

variable "tfbake_command" {
  description = "How to run tfbake, e.g. [\"python3\", \"-m\", \"tfbake\"] for a checkout without the tfbake script on PATH."
  type        = list(string)
  default     = ["tfbake"]
}
