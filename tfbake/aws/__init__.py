"""AWS access: clients and their retry policy, failures turned into one-line errors (and the one
way to read an error code), the AMI catalog, and the recorded inputs of each bake."""
