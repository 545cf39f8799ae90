variable "region" {
  description = "Region of the image account's bakes."
  type        = string
  default     = "us-east-1"
}

variable "workload_account_ids" {
  description = "The workload accounts that launch the AMI (12-digit IDs)."
  type        = list(string)

  validation {
    condition     = alltrue([for account in var.workload_account_ids : can(regex("^[0-9]{12}$", account))])
    error_message = "workload_account_ids must be 12-digit account IDs."
  }
}

variable "tfbake_command" {
  description = "How to run tfbake, e.g. [\"python3\", \"-m\", \"tfbake\"] for a checkout without the tfbake script on PATH."
  type        = list(string)
  default     = ["tfbake"]
}
