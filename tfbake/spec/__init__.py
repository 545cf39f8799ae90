"""Reading specs (HCL and JSON files, the Terraform query's fields) into model values, checking
every field. No I/O beyond reading the spec and the Ansible files it names."""
