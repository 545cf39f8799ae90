"""After the home AMI is ready: copies in other regions, sharing, fast snapshot restore."""
