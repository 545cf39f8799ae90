variable "name" {
  description = "Name of the image set: 1-48 lower-case letters, digits or dashes. Part of the AMI name and its tfbake:name tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]{1,48}$", var.name))
    error_message = "name must be 1-48 lower-case letters, digits or dashes."
  }
}

variable "images" {
  description = "Docker image references to pre-pull into the AMI (\"nginx:1.27\", \"ghcr.io/acme/api:2.3.1@sha256:...\"). Tags are resolved to digests at plan time."
  type        = list(string)

  validation {
    condition     = length(var.images) > 0
    error_message = "images is empty: an image set needs at least one image."
  }
}

variable "base_ami" {
  description = "The AMI to bake on: an ID (\"ami-...\"), an SSM parameter (\"ssm:/aws/service/...\"), or jsonencode({owners = [...], name = \"pattern-*\"}) for the newest match."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8}(?:[0-9a-f]{9})?$", var.base_ami)) || can(regex("^ssm:/?[A-Za-z0-9_./-]+$", var.base_ami)) || can(jsondecode(var.base_ami).name)
    error_message = "base_ami must be an AMI ID (ami-...), ssm:<parameter path>, or jsonencode({owners = [...], name = \"pattern-*\"})."
  }
}

variable "architecture" {
  description = "CPU architecture of the AMI, x86_64 or arm64. Null takes the base AMI's (one more DescribeImages call)."
  type        = string
  default     = null

  validation {
    condition     = var.architecture == null || contains(["x86_64", "arm64"], coalesce(var.architecture, "-"))
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "volume" {
  description = "Root volume of the AMI: size in GiB, type, encryption and an optional KMS key."
  type = object({
    size       = optional(number, 30)
    type       = optional(string, "gp3")
    encrypted  = optional(bool, true)
    kms_key_id = optional(string)
  })
  default = {}

  validation {
    condition     = var.volume.size >= 1 && var.volume.size <= 16384 && floor(var.volume.size) == var.volume.size
    error_message = "volume.size must be a whole number of GiB from 1 to 16384."
  }

  validation {
    condition     = contains(["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"], var.volume.type)
    error_message = "volume.type must be one of gp3, gp2, io1, io2, st1, sc1, standard."
  }
}

variable "provision" {
  description = "Shell commands run on the builder after the images are pulled. Part of the fingerprint."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for command in var.provision : trimspace(command) != ""])
    error_message = "provision commands must not be empty."
  }
}

variable "salt" {
  description = "Any string; changing it forces a new bake with otherwise unchanged inputs."
  type        = string
  default     = ""
}

variable "runtime" {
  description = "The image store the images are baked into: \"docker\", or \"containerd\" (EKS nodes; the kubelet reads containerd_namespace)."
  type        = string
  default     = "docker"
  nullable    = false

  validation {
    condition     = contains(["docker", "containerd"], var.runtime)
    error_message = "runtime must be \"docker\" or \"containerd\"."
  }
}

variable "containerd_namespace" {
  description = "containerd's namespace for the images with runtime = \"containerd\"; null means k8s.io, the kubelet's."
  type        = string
  default     = null
}

variable "tags" {
  description = "Extra tags for the AMI and its snapshots. Keys starting with tfbake: or aws: are reserved."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key in keys(var.tags) : !startswith(lower(key), "tfbake:") && !startswith(lower(key), "aws:")])
    error_message = "tags: keys starting with tfbake: or aws: are reserved."
  }
}

variable "builder" {
  description = "How the bake runs (not part of the fingerprint): instance type, subnet, security groups, instance profile and Automation role (the bake-infra module's builder output fits), a runbook name, a timeout, and a CloudWatch Logs group for the recipe's whole output."
  type = object({
    instance_type       = optional(string)
    subnet_id           = optional(string)
    security_group_ids  = optional(list(string), [])
    instance_profile    = optional(string)
    automation_role_arn = optional(string)
    document_name       = optional(string)
    timeout_minutes     = optional(number, 60)
    log_group           = optional(string)
  })
  default = {}

  validation {
    condition     = var.builder.timeout_minutes >= 1 && var.builder.timeout_minutes <= 1440
    error_message = "builder.timeout_minutes must be from 1 to 1440."
  }

  validation {
    condition     = var.builder.timeout_minutes <= 720 || try(length(var.builder.automation_role_arn) > 0, false)
    error_message = "builder.timeout_minutes above 720 needs builder.automation_role_arn: SSM runs an automation for longer than 12 hours only under an assume role."
  }
}

variable "ami_owners" {
  description = "Accounts trusted to own the AMI of this fingerprint (12-digit IDs or \"self\"). self is found by tfbake's tags; another account's AMI, whose tags AWS hides, by the description tfbake publishes on it when the image account shares it (see Many accounts below)."
  type        = list(string)
  default     = ["self"]

  validation {
    condition     = alltrue([for owner in var.ami_owners : can(regex("^(?:[0-9]{12}|self|amazon|aws-marketplace|aws-backup-vault)$", owner))])
    error_message = "ami_owners must be 12-digit account IDs or self, amazon, aws-marketplace, aws-backup-vault."
  }
}

variable "insecure_registries" {
  description = "Registries (host[:port]) to reach over plain HTTP; loopback always is."
  type        = list(string)
  default     = []
}

variable "registry_credentials_parameter" {
  description = "Name of an SSM SecureString parameter holding Docker \"auths\" for private registries, read by the builder."
  type        = string
  default     = null
}

variable "ansible" {
  description = "An Ansible playbook run on the builder after the pulls and the provision commands: the files that make up the bundle (files and directories, relative to directory), the playbook among them, extra vars, and the directory the files start from. A relative directory starts from Terraform's working directory, so a path built from path.module works; null takes the working directory. The files' content, the playbook and the extra vars are part of the fingerprint."
  type = object({
    playbook   = string
    files      = list(string)
    extra_vars = optional(any)
    directory  = optional(string)
  })
  default = null

  validation {
    condition     = var.ansible == null ? true : can(regex("^[A-Za-z0-9_][A-Za-z0-9_.@+-]*(/[A-Za-z0-9_][A-Za-z0-9_.@+-]*){0,31}$", trimprefix(var.ansible.playbook, "./")))
    error_message = "ansible.playbook must be a relative path of letters, digits and _.@+- (no component starting with '.' or '-')."
  }

  validation {
    condition     = var.ansible == null ? true : length(var.ansible.files) > 0 && alltrue([for file in var.ansible.files : file != "" && !startswith(file, "/") && !contains(split("/", file), "..")])
    error_message = "ansible.files must list at least the playbook, as relative paths without '..'."
  }

  validation {
    condition     = var.ansible == null ? true : var.ansible.extra_vars == null ? true : can(keys(var.ansible.extra_vars)) && alltrue([for key in try(keys(var.ansible.extra_vars), []) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", key))]) && length(jsonencode(var.ansible.extra_vars)) <= 512
    error_message = "ansible.extra_vars must be a map keyed by Ansible variable names, at most 512 characters as JSON (larger values belong in a vars file among the files)."
  }
}

variable "regions" {
  description = "Further regions that get a copy of the AMI (CopyImage, never a second bake), e.g. [\"eu-west-1\"]. The home region is region; listing it too is harmless."
  type        = list(string)
  default     = null

  validation {
    condition     = alltrue([for region in var.regions == null ? [] : var.regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$", region))])
    error_message = "regions must be region names like eu-west-1."
  }

  validation {
    condition     = var.regions == null ? true : length(distinct(var.regions)) == length(var.regions)
    error_message = "regions must not list a region twice."
  }
}

variable "region_kms_keys" {
  description = "KMS key (id, alias, or ARN of that region) that encrypts the copy in each region of regions. Null: EC2's default key of the region. The home region's key is volume.kms_key_id."
  type        = map(string)
  default     = null

  validation {
    condition     = alltrue([for region, key in var.region_kms_keys == null ? {} : var.region_kms_keys : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$", region)) && can(regex("^[A-Za-z0-9:/_.-]+$", key)) && length(key) <= 2048])
    error_message = "region_kms_keys must map region names like eu-west-1 to KMS key ids, aliases or ARNs."
  }

  validation {
    condition     = alltrue([for region, key in var.region_kms_keys == null ? {} : var.region_kms_keys : !startswith(key, "arn:") || try(regex("^arn:aws[a-z-]*:kms:([a-z0-9-]+):", key)[0], "") == region])
    error_message = "region_kms_keys: a key ARN must be of the region it encrypts the copy in."
  }
}

variable "share" {
  description = "Launch permissions for the AMI in every region: 12-digit account IDs (which also get create-volume permission on the snapshots), organization ARNs and organizational unit ARNs. Sharing needs customer-managed keys: volume.kms_key_id and region_kms_keys."
  type = object({
    accounts             = optional(list(string), [])
    organizations        = optional(list(string), [])
    organizational_units = optional(list(string), [])
  })
  default = null

  validation {
    condition     = var.share == null ? true : alltrue([for account in var.share.accounts : can(regex("^[0-9]{12}$", account))])
    error_message = "share.accounts must be 12-digit account IDs."
  }

  validation {
    condition     = var.share == null ? true : alltrue([for arn in var.share.organizations : can(regex("^arn:aws[a-z-]*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}$", arn))])
    error_message = "share.organizations must be organization ARNs (arn:aws:organizations::111111111111:organization/o-...)."
  }

  validation {
    condition     = var.share == null ? true : alltrue([for arn in var.share.organizational_units : can(regex("^arn:aws[a-z-]*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}$", arn))])
    error_message = "share.organizational_units must be organizational unit ARNs (arn:aws:organizations::111111111111:ou/o-.../ou-...)."
  }

  validation {
    condition     = var.share == null ? true : alltrue([for values in [var.share.accounts, var.share.organizations, var.share.organizational_units] : length(distinct(values)) == length(values)])
    error_message = "share must not list an account, organization or organizational unit twice."
  }
}

variable "fast_snapshot_restore" {
  description = "Availability zones of the home region in which fast snapshot restore is enabled for the AMI's snapshots. Billed per snapshot, zone and hour (about USD 540 a month per snapshot and zone in us-east-1), and left enabled on replaced AMIs until disabled or gc deletes them."
  type        = list(string)
  default     = null

  validation {
    condition     = alltrue([for zone in var.fast_snapshot_restore == null ? [] : var.fast_snapshot_restore : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}(-[a-z]+-[0-9]+)?[a-z]$", zone))])
    error_message = "fast_snapshot_restore must be availability zones like us-east-1a."
  }

  validation {
    condition     = var.fast_snapshot_restore == null ? true : length(distinct(var.fast_snapshot_restore)) == length(var.fast_snapshot_restore)
    error_message = "fast_snapshot_restore must not list a zone twice."
  }
}

variable "region" {
  description = "AWS region of the AMI. Null takes the AWS provider's region."
  type        = string
  default     = null
}

variable "on_missing" {
  description = "Removed in 0.2: a plan never bakes and the apply bakes what the plan showed. Leave it unset; TFBAKE_ON_MISSING=fail still keeps an apply from baking."
  type        = string
  default     = null

  validation {
    condition     = var.on_missing == null
    error_message = "on_missing was removed in modules/baked-ami 0.2: a plan never bakes, and the apply bakes what the plan showed (docs/external.md); delete the on_missing argument."
  }
}

variable "tfbake_command" {
  description = "The command that runs tfbake, as a list (\"external\" or \"bake-planned\" is appended), e.g. [\"python3\", \"-m\", \"tfbake\"]."
  type        = list(string)
  default     = ["tfbake"]

  validation {
    condition     = length(var.tfbake_command) > 0 && alltrue([for part in var.tfbake_command : part != ""])
    error_message = "tfbake_command must be a non-empty list of non-empty strings."
  }
}
