# An image set: three containers pre-pulled into an Amazon Linux 2023 AMI.
# References are pinned by digest, so the fingerprint needs no registry; a tag alone
# (e.g. "nginx:1.27") would be resolved to its digest through the registry's API.
name = "quickstart-web"
images = [
  "nginx:1.27@sha256:6784fb0834aa7dbbe12e3d7471e69c290df3e6ba810dc38b34ae33d3c1c05f7d",
  "redis:7.4@sha256:bbf7b8d3d6be53c5dbfbc6b2b1b9a6c4b63e82a0ac1d5e3ad1e1ae8d64d1c7b1",
  "gcr.io/cadvisor/cadvisor:v0.49.1@sha256:3cde6faf0791ebf7b41d6f8ae7145466fed712ea6f252c935294d2608b1af388",
]
base_ami     = "ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
architecture = "x86_64"
provision    = ["echo 'baked by tfbake' > /etc/motd"]

volume {
  size = 30
}

# The builder must have an instance profile, or it never registers with SSM: in an account,
# the one modules/bake-infra creates (demo.py creates this one in the sandbox).
builder {
  instance_profile = "tfbake-builder"
}
