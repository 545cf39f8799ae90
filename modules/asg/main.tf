locals {
  # Docker's normalisation (docker.io/library/ for official images, :latest without a tag or
  # digest), so that "nginx:1.27" matches the baked "docker.io/library/nginx:1.27@sha256:...".
  container_refs = {
    for name, c in var.containers : name => replace(join("", [
      can(regex("^[^/]*[.:][^/]*/|^localhost/", c.image)) ? "" : (strcontains(c.image, "/") ? "docker.io/" : "docker.io/library/"),
      c.image,
      can(regex("(?::[^/@]*|@.*)$", c.image)) ? "" : ":latest",
    ]), "/^docker\\.io\\/([^/]+)$/", "docker.io/library/$1")
  }
  # A baked reference can be named with its tag and digest, its tag only, or its digest only.
  baked_refs = toset(flatten([
    for ref in var.baked_images : [ref, split("@", ref)[0], replace(ref, "/:[^/:@]*@/", "@")]
  ]))
  unbaked = [
    for name, ref in local.container_refs : "${name} (${var.containers[name].image})"
    if !contains(local.baked_refs, ref)
  ]

  # systemd parses ExecStart itself: quote each word, escape its specifiers (%) and variables ($).
  quote = { for name, c in var.containers : name => {
    ports   = [for p in c.ports : replace(replace(jsonencode(p), "%", "%%"), "$", "$$")]
    volumes = [for v in c.volumes : replace(replace(jsonencode(v), "%", "%%"), "$", "$$")]
    command = [for a in c.command : replace(replace(jsonencode(a), "%", "%%"), "$", "$$")]
  } }
  units = {
    for name, c in var.containers : name => <<-EOT
      [Unit]
      Description=Container ${name} (${c.image}) from the baked AMI
      After=docker.service
      Requires=docker.service

      [Service]
      Restart=always
      RestartSec=2
      ExecStartPre=-/usr/bin/docker rm --force ${name}
      ExecStart=/usr/bin/docker run --rm --pull=never --name ${name} --env-file /etc/tfbake/containers/${name}.env${join("", [for p in local.quote[name].ports : " --publish ${p}"])}${join("", [for v in local.quote[name].volumes : " --volume ${v}"])}${c.privileged ? " --privileged" : ""}${c.network == null ? "" : " --network ${c.network}"} ${replace(jsonencode(c.image), "%", "%%")}${join("", [for a in local.quote[name].command : " ${a}"])}
      ExecStop=/usr/bin/docker stop ${name}

      [Install]
      WantedBy=multi-user.target
    EOT
  }
  # The ECS agent reads its configuration when it starts, after cloud-init's user data on
  # ECS-optimized AMIs; the file is written whole, so a baked default cannot linger.
  ecs_config = var.ecs == null ? "" : join("", [
    for key, value in merge(var.ecs.settings, {
      ECS_CLUSTER             = var.ecs.cluster
      ECS_IMAGE_PULL_BEHAVIOR = var.ecs.image_pull_behavior
    }) : "${key}=${value}\n"
  ])
  env_files = {
    for name, c in var.containers : name => join("", [for k, v in c.environment : "${k}=${v}\n"])
  }
  # A boothook, not a script: cloud-init runs a user data script in its final stage, after
  # multi-user.target, but a boothook as soon as its network stage (cloud-init.service) has read
  # the user data, early in boot and on every boot. The units are started without waiting for
  # them (--no-block): each starts once Docker runs, and needs nothing else from cloud-init.
  # Files travel base64-encoded so that no value needs shell quoting. Built from lines, not a
  # heredoc: cloud-init reads the user data's type from its first line, and an indented heredoc
  # with template directives keeps its indentation.
  user_data = join("\n", concat(
    [
      "#cloud-boothook",
      "#!/bin/bash",
      "# Start the containers baked into this AMI as soon as Docker runs. --pull=never: nothing is downloaded at boot.",
      "# Run on every boot. A file is replaced only when it changed, whole (renamed into place), so that a unit starting meanwhile reads the old file or the new one.",
      "set -euo pipefail",
      "changed=",
      "put() { if [ -e \"$1\" ] && [ \"$(base64 -w0 \"$1\")\" = \"$2\" ]; then return; fi; base64 -d <<<\"$2\" >\"$1.new\"; mv -f \"$1.new\" \"$1\"; changed=1; }",
      "install -d -m 0700 /etc/tfbake/containers",
    ],
    var.ecs == null ? [] : [
      "install -d -m 0755 /etc/ecs",
      "put /etc/ecs/ecs.config '${base64encode(local.ecs_config)}'",
    ],
    flatten([for name, unit in local.units : [
      "put /etc/systemd/system/tfbake-container-${name}.service '${base64encode(unit)}'",
      "put /etc/tfbake/containers/${name}.env '${base64encode(local.env_files[name])}'",
    ]]),
    [
      "units=(docker.service${join("", [for name in keys(local.units) : " tfbake-container-${name}.service"])})",
      "systemctl enable --no-reload \"$${units[@]}\"",
      # systemd reads its units again only when a file changed: on the first boot every file
      # has, and multi-user.target then includes the new units, as it does on later boots.
      "if [ -n \"$changed\" ]; then systemctl daemon-reload; fi",
      "systemctl start --no-block \"$${units[@]}\"",
      "",
    ],
  ))
}

# The root volume's device name is the AMI's own: a mapping under any other name would add a
# second, empty volume instead of setting the root's initialization rate.
data "aws_ami" "this" {
  count = var.volume_initialization_rate == null ? 0 : 1

  filter {
    name   = "image-id"
    values = [var.ami_id]
  }
}

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-"
  description            = "${var.name}: containers pre-pulled into ${var.ami_id}"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  vpc_security_group_ids = var.security_group_ids
  user_data              = base64encode(local.user_data)
  update_default_version = true
  tags                   = var.tags

  dynamic "iam_instance_profile" {
    for_each = var.iam_instance_profile == null ? [] : [var.iam_instance_profile]
    content {
      name = iam_instance_profile.value
    }
  }

  dynamic "block_device_mappings" {
    for_each = data.aws_ami.this
    content {
      device_name = block_device_mappings.value.root_device_name
      ebs {
        # EBS merges this with the AMI's own mapping: size, type and snapshot stay the AMI's.
        volume_initialization_rate = var.volume_initialization_rate
      }
    }
  }

  # checkov:skip=CKV_AWS_341:a hop limit of 2 lets containers on Docker's bridge network reach IMDSv2 (tokens stay required); 1 would cut them off from instance credentials.
  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
    # Containers on Docker's bridge network are one hop further from the instance metadata.
    http_put_response_hop_limit = 2
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = var.name })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { Name = var.name })
  }

  lifecycle {
    precondition {
      condition     = length(local.unbaked) == 0
      error_message = "Containers whose image is not baked into the AMI (they would be pulled at boot, which --pull=never forbids): ${join(", ", local.unbaked)}. Add the image to the baked-ami module's images, or use one of: ${join(", ", var.baked_images)}."
    }
  }
}

resource "aws_autoscaling_group" "this" {
  name                      = var.name
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = var.subnet_ids
  health_check_type         = "EC2"
  health_check_grace_period = var.health_check_grace_period
  wait_for_capacity_timeout = var.wait_for_capacity_timeout

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  # A new launch template version (a new AMI after a bake) rolls the instances.
  dynamic "instance_refresh" {
    for_each = var.instance_refresh == null ? [] : [var.instance_refresh]
    content {
      strategy = "Rolling"
      preferences {
        min_healthy_percentage = instance_refresh.value.min_healthy_percentage
        instance_warmup        = instance_refresh.value.instance_warmup
      }
    }
  }

  dynamic "tag" {
    for_each = var.tags
    content {
      key   = tag.key
      value = tag.value
      # Instances and volumes get their tags from the launch template.
      propagate_at_launch = false
    }
  }
}
