"""Terraform's side: the external data source's query protocol, and module calls found in a
directory with the values Terraform would give them."""
