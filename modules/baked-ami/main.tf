data "aws_region" "current" {}

locals {
  # This module's release, and the tfbake releases it works with: tfbake refuses a module it is
  # too old or too new for, in one line naming both and the install command.
  module_version  = "0.2.0"
  tfbake_versions = ">= 0.2.0, < 0.3.0"

  # tfbake run through a launcher that says how to install it when it is missing, instead of
  # the provider's "executable file not found". Values reach it as arguments, never as text.
  launcher = "command -v \"$1\" >/dev/null 2>&1 || { echo \"tfbake: error: $1 is not on the PATH of the machine running Terraform: install tfbake ${local.tfbake_versions} there: pipx install 'tfbake${replace(local.tfbake_versions, " ", "")}' (or pip install a wheel of it; see tfbake's README, Install)\" >&2; exit 127; }; exec \"$@\""
  program  = concat(["/bin/sh", "-c", local.launcher, "tfbake"], var.tfbake_command)

  # AWS provider 6 calls the configured region `region` and deprecates `name`, which is all 5.x
  # has. lookup() reads whichever exists without naming a deprecated attribute in the source,
  # and try() evaluates the fallback only when `region` is absent.
  region = var.region != null ? var.region : try(
    coalesce(lookup(data.aws_region.current, "region", null)),
    lookup(data.aws_region.current, "name", null),
  )

  # Docker's reference grammar (distribution/reference) as tfbake states it:
  # [host[:port]/]path[:tag][@digest], a lower-case path, a name (host and path) of at most 255
  # characters, and no bare 64-hex image ID as a Docker Hub repository. tests/e2e feeds the same
  # accepted and rejected references to this and to tfbake. Checked at plan, before tfbake runs.
  reference_pattern = "^((?:(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]+)?/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)(?::[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64}|@sha512:[0-9a-f]{128})?$"
  image_id_pattern  = "^(?:(?:index\\.)?docker\\.io/)?[a-f0-9]{64}(?:[:@].*)?$"
  invalid_images = [
    for ref in var.images : ref
    if !(can(regex(local.reference_pattern, ref)) && length(try(regex(local.reference_pattern, ref)[0], "")) <= 255 && !can(regex(local.image_id_pattern, ref)))
  ]

  # The home region is where the bake runs; tfbake ignores it in regions.
  copy_regions    = [for region in var.regions == null ? [] : var.regions : region if region != local.region]
  region_kms_keys = var.region_kms_keys == null ? {} : var.region_kms_keys
  shared          = var.share == null ? false : length(concat(var.share.accounts, var.share.organizations, var.share.organizational_units)) > 0

  # The external data source takes a map of strings: lists and maps travel jsonencoded, and
  # values not given travel as "" (tfbake reads "" as "not given"; Terraform would drop a null).
  # ansible.directory travels absolute: tfbake would resolve a relative one against its own
  # working directory, which a data source's working_dir can change.
  query = {
    protocol             = "2"
    module_version       = local.module_version
    tfbake_versions      = local.tfbake_versions
    name                 = var.name
    images               = jsonencode(var.images)
    base_ami             = var.base_ami
    architecture         = var.architecture == null ? "" : var.architecture
    volume               = jsonencode(var.volume)
    provision            = jsonencode(var.provision)
    salt                 = var.salt
    runtime              = var.runtime
    containerd_namespace = var.containerd_namespace == null ? "" : var.containerd_namespace
    ami_owners           = jsonencode(var.ami_owners)
    insecure_registries  = jsonencode(var.insecure_registries)
    ansible              = var.ansible == null ? "" : jsonencode(merge(var.ansible, { directory = abspath(coalesce(var.ansible.directory, path.cwd)) }))
    regions              = var.regions == null ? "" : jsonencode(var.regions)
    region               = local.region
  }

  # What only the bake needs. Kept out of the lookup's query: these often name resources of the
  # same apply (bake-infra's builder, a KMS key's grants), and a query with a value unknown at
  # plan would defer the lookup to the apply, hiding the fingerprint from the plan.
  bake_settings = {
    tags                           = jsonencode(var.tags)
    builder                        = jsonencode(var.builder)
    registry_credentials_parameter = var.registry_credentials_parameter == null ? "" : var.registry_credentials_parameter
    region_kms_keys                = var.region_kms_keys == null ? "" : jsonencode(var.region_kms_keys)
    share                          = var.share == null ? "" : jsonencode(var.share)
    fast_snapshot_restore          = var.fast_snapshot_restore == null ? "" : jsonencode(var.fast_snapshot_restore)
  }
}

# The plan reads, the apply acts. This lookup runs at every plan (and at an apply without a saved
# plan) and never bakes or writes: it reports the fingerprint, the pinned inputs, and whether a
# ready AMI exists.
data "external" "lookup" {
  program = concat(local.program, ["external"])
  query   = local.query

  # Rules that span variables, checked at plan as tfbake checks them before any bake.
  lifecycle {
    precondition {
      condition     = length(local.invalid_images) == 0
      error_message = "var.images: invalid image reference ${join(", ", [for ref in local.invalid_images : jsonencode(ref)])}. A reference is [registry[:port]/]repository[:tag][@sha256:digest] with a lower-case repository."
    }

    precondition {
      condition     = alltrue([for region in keys(local.region_kms_keys) : contains(local.copy_regions, region)])
      error_message = "region_kms_keys may only name regions of regions other than the home region (${local.region}), whose key is volume.kms_key_id."
    }

    precondition {
      condition     = !local.shared || !var.volume.encrypted || (var.volume.kms_key_id != null && alltrue([for region in local.copy_regions : contains(keys(local.region_kms_keys), region)]))
      error_message = "share: AWS cannot share an AMI encrypted with the AWS-managed EBS key; set volume.kms_key_id (and region_kms_keys for every region of regions) to customer-managed keys and grant the accounts kms:Decrypt/CreateGrant."
    }

    precondition {
      condition     = alltrue([for zone in var.fast_snapshot_restore == null ? [] : var.fast_snapshot_restore : startswith(zone, local.region) && (length(zone) == length(local.region) + 1 || startswith(substr(zone, length(local.region), -1), "-"))])
      error_message = "fast_snapshot_restore: every zone must be in the home region (${local.region})."
    }
  }
}

locals {
  planned = data.external.lookup.result
  found   = local.planned.status == "found"

  # What the apply is handed: the query with the inputs the plan pinned (digests, base AMI), so
  # that it bakes exactly what the plan showed, never a tag resolved again.
  planned_query = merge(local.query, local.bake_settings, {
    images              = local.planned.images
    base_ami            = local.planned.base_ami
    architecture        = local.planned.architecture
    planned_fingerprint = local.planned.fingerprint
    planned_ami         = local.planned.ami_id
  })
}

# The bake to come, as a change a reviewer reads in the plan: the image set, its fingerprint and
# the pinned images. It is replaced when the fingerprint changes (a moved tag, a new input) or
# when an AMI of it was invalidated (bake_trigger), and its apply bakes, or finds, the AMI and
# makes its region copies and shares. A failed or interrupted bake leaves it tainted, so the
# next plan plans the bake again.
resource "terraform_data" "bake" {
  triggers_replace = local.planned.bake_trigger

  input = {
    image_set   = local.planned.name
    fingerprint = local.planned.fingerprint
    base_ami    = local.planned.base_ami
    images      = jsondecode(local.planned.images)
    region      = local.planned.region
  }

  provisioner "local-exec" {
    interpreter = concat(local.program, ["bake-planned"])
    command     = jsonencode(local.planned_query)
    # The plan shows what is baked; the apply's output is for the bake's progress, not its query.
    quiet = true
  }
}

# The AMI the bake made, read once the bake resource is applied: depends_on defers the read to
# the apply while the resource has a change pending. Terraform cannot leave a data source out on
# a value that may be unknown until apply (the lookup's inputs can come from resources of the
# same apply), so when the lookup found the AMI this one reads nothing: its program is a shell
# that answers an empty object, and a plan with nothing to bake stays one tfbake process.
data "external" "baked" {
  program = local.found ? ["/bin/sh", "-c", "cat >/dev/null; echo '{}'"] : concat(local.program, ["external"])
  query   = local.planned_query

  depends_on = [terraform_data.bake]
}

locals {
  result = local.found ? local.planned : data.external.baked.result
}
