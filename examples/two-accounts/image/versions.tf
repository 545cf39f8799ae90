terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
    external = {
      source  = "hashicorp/external"
      version = ">= 2.3"
    }
  }
}

# The endpoint comes from AWS_ENDPOINT_URL (`tfbake sandbox` prints it), which the provider
# reads like the AWS SDKs do; the sandbox takes any credentials (AWS_ACCESS_KEY_ID=testing).
provider "aws" {
  region = var.region

  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}
