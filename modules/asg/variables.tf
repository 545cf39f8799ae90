variable "name" {
  description = "Name of the autoscaling group and prefix of the launch template's name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", var.name))
    error_message = "name must be 1-100 letters, digits, dots, dashes or underscores."
  }
}

variable "ami_id" {
  description = "The AMI instances launch from: the baked-ami module's ami_id."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8}(?:[0-9a-f]{9})?$", var.ami_id))
    error_message = "ami_id must be an AMI ID (ami-...)."
  }
}

variable "baked_images" {
  description = "The images baked into the AMI: the baked-ami module's images output. Every container's image must be one of them."
  type        = list(string)
}

variable "containers" {
  description = "Containers each instance starts at boot as systemd units, from the baked images only (docker run --pull=never). Keys are container names."
  type = map(object({
    image       = string
    ports       = optional(list(string), [])
    environment = optional(map(string), {})
    volumes     = optional(list(string), [])
    command     = optional(list(string), [])
    privileged  = optional(bool, false)
    network     = optional(string)
  }))
  default = {}

  validation {
    condition     = alltrue([for c in values(var.containers) : c.network == null || contains(["bridge", "host", "none"], coalesce(c.network, "bridge"))])
    error_message = "network must be \"bridge\" (Docker's default), \"host\" or \"none\"."
  }

  validation {
    condition     = alltrue([for name in keys(var.containers) : can(regex("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$", name))])
    error_message = "container names must be 1-63 letters, digits, dots, dashes or underscores, starting with a letter or digit."
  }

  validation {
    condition     = alltrue(flatten([for c in values(var.containers) : [for p in c.ports : can(regex("^(?:[0-9.]+:)?[0-9]{1,5}(?::[0-9]{1,5})?(?:/(?:tcp|udp))?$", p))]]))
    error_message = "ports must look like \"80\", \"8080:80\", \"127.0.0.1:8080:80\" or \"53:53/udp\"."
  }

  validation {
    condition     = alltrue(flatten([for c in values(var.containers) : [for k, v in c.environment : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k)) && !strcontains(v, "\n")]]))
    error_message = "environment names must be shell-style identifiers and values must be single lines."
  }
}

variable "ecs" {
  description = "Make each instance an ECS container instance of this cluster: /etc/ecs/ecs.config gets ECS_CLUSTER and ECS_IMAGE_PULL_BEHAVIOR (default prefer-cached, so tasks use the baked images instead of pulling them again), plus any further agent settings, before the agent starts. For ECS-optimized base AMIs. Null: no ECS."
  type = object({
    cluster             = string
    image_pull_behavior = optional(string, "prefer-cached")
    settings            = optional(map(string), {})
  })
  default = null

  validation {
    condition     = var.ecs == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.ecs.cluster))
    error_message = "ecs.cluster must be an ECS cluster name: 1-255 letters, digits, dashes or underscores."
  }

  validation {
    condition     = var.ecs == null || contains(["default", "always", "once", "prefer-cached"], try(var.ecs.image_pull_behavior, ""))
    error_message = "ecs.image_pull_behavior must be default, always, once or prefer-cached; only once and prefer-cached use the baked images."
  }

  validation {
    condition     = var.ecs == null || alltrue([for key, value in try(var.ecs.settings, {}) : can(regex("^ECS_[A-Z0-9_]+$", key)) && !contains(["ECS_CLUSTER", "ECS_IMAGE_PULL_BEHAVIOR"], key) && !can(regex("[\n\r]", value))])
    error_message = "ecs.settings keys must be ECS agent variables (ECS_...) other than ECS_CLUSTER and ECS_IMAGE_PULL_BEHAVIOR, with one-line values."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the group's instances."
  type        = string
  default     = "t3.micro"
}

variable "volume_initialization_rate" {
  description = "MiB/s (100-300) at which EBS initializes each instance's root volume from the AMI's snapshot, so that the first start of the baked containers does not wait on blocks loaded lazily from S3. EBS charges for it per volume created. Null keeps EBS's default lazy loading. The image set's fast_snapshot_restore is the alternative."
  type        = number
  default     = null

  validation {
    condition     = var.volume_initialization_rate == null || try(var.volume_initialization_rate >= 100 && var.volume_initialization_rate <= 300 && floor(var.volume_initialization_rate) == var.volume_initialization_rate, false)
    error_message = "volume_initialization_rate must be a whole number of MiB/s from 100 to 300 (EBS's range), or null."
  }
}

variable "subnet_ids" {
  description = "Subnets the group launches into."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids needs at least one subnet."
  }
}

variable "security_group_ids" {
  description = "Security groups of the instances."
  type        = list(string)
  default     = []
}

variable "iam_instance_profile" {
  description = "Name of the instances' IAM instance profile. Null launches without one."
  type        = string
  default     = null
}

variable "min_size" {
  description = "Minimum number of instances."
  type        = number
  default     = 1
}

variable "max_size" {
  description = "Maximum number of instances."
  type        = number
  default     = 2
}

variable "desired_capacity" {
  description = "Number of instances to run. Null leaves it to scaling policies (starting at min_size)."
  type        = number
  default     = null
}

variable "instance_refresh" {
  description = "Replace instances (rolling) when the launch template changes, e.g. after a new bake. Null disables it."
  type = object({
    min_healthy_percentage = optional(number, 90)
    instance_warmup        = optional(number, 60)
  })
  default = {}
}

variable "health_check_grace_period" {
  description = "Seconds after launch before health checks count."
  type        = number
  default     = 60
}

variable "wait_for_capacity_timeout" {
  description = "How long Terraform waits for the desired number of healthy instances; \"0\" does not wait."
  type        = string
  default     = "10m"
}

variable "tags" {
  description = "Tags for the group, its instances and volumes, and the launch template."
  type        = map(string)
  default     = {}
}
