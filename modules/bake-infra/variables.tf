variable "name" {
  description = "Prefix of the names of the roles, instance profile and security group."
  type        = string
  default     = "tfbake"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,38}$", var.name))
    error_message = "name must be 1-38 characters of letters, digits and +=,.@_- (it prefixes IAM role names)."
  }
}

variable "bakes" {
  description = "Whether this account bakes. False in a workload account, which only looks up the AMIs an image account shares with it: the module then creates only the lookup policy (lookup_policy_arn), none of the bake's roles, instance profile or security group."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "VPC of the builder's security group. Null uses the region's default VPC."
  type        = string
  default     = null
}

variable "registry_credentials_parameter_arn" {
  description = "ARN of the SSM SecureString parameter with Docker registry credentials that the builder may read (the baked-ami module's registry_credentials_parameter). Null grants no parameter access."
  type        = string
  default     = null

  validation {
    condition     = var.registry_credentials_parameter_arn == null || can(regex("^arn:aws[a-z-]*:ssm:[a-z0-9-]+:[0-9]{12}:parameter/", coalesce(var.registry_credentials_parameter_arn, "-")))
    error_message = "registry_credentials_parameter_arn must be an SSM parameter ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)."
  }
}

variable "ecr_repository_arns" {
  description = "ARNs of the ECR repositories the builder may pull from (those of the image sets it bakes). Null allows every repository whose policy lets the role pull."
  type        = list(string)
  default     = null

  validation {
    condition     = var.ecr_repository_arns == null || alltrue([for arn in coalesce(var.ecr_repository_arns, []) : can(regex("^arn:aws[a-z-]*:ecr:[a-z0-9-]+:[0-9]{12}:repository/", arn))])
    error_message = "ecr_repository_arns must be ECR repository ARNs (arn:aws:ecr:REGION:ACCOUNT:repository/NAME)."
  }
}

variable "volume_kms_key_arn" {
  description = "ARN of a customer-managed KMS key that encrypts baked volumes (the baked-ami module's volume.kms_key_id). Null: volumes use the AWS-managed EBS key."
  type        = string
  default     = null
}

variable "recipe_log_group_name" {
  description = "Name of a CloudWatch Logs group the module creates for the recipe's whole output (the baked-ami module's builder.log_group; the builder output carries it). Only the builder may write to it, only the caller read it. Null: no log group; a failed bake then shows the summary the recipe prints."
  type        = string
  default     = null

  validation {
    condition     = var.recipe_log_group_name == null || can(regex("^[A-Za-z0-9_./#-]{1,512}$", coalesce(var.recipe_log_group_name, "-")))
    error_message = "recipe_log_group_name must be 1-512 characters of letters, digits and _./#-."
  }
}

variable "recipe_log_retention_days" {
  description = "Days CloudWatch Logs keeps the recipe's output (recipe_log_group_name)."
  type        = number
  default     = 30
}

variable "recipe_log_kms_key_arn" {
  description = "Customer-managed KMS key of the recipe's log group; its key policy must let CloudWatch Logs use it. Null: CloudWatch Logs' own encryption."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for every resource the module creates."
  type        = map(string)
  default     = {}
}

variable "egress_cidr_blocks" {
  description = "Where builders may connect on TCP 443 (AWS endpoints, registries) and 80 (package mirrors). Narrow it when VPC endpoints and a proxy serve them."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "extra_egress" {
  description = "More TCP ports builders may connect to, such as a registry on 5000: {description, port, cidr_blocks}."
  type = list(object({
    description = string
    port        = number
    cidr_blocks = list(string)
  }))
  default = []

  validation {
    condition     = alltrue([for rule in var.extra_egress : rule.port >= 1 && rule.port <= 65535 && floor(rule.port) == rule.port])
    error_message = "extra_egress: every port must be a whole number from 1 to 65535."
  }
}
