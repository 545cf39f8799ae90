"""Accounts as AWS separates them.

moto keeps one EC2 backend per account and region and answers AssumeRole with credentials of
the role's account, so each account already has its own view. What it lacks is the one way
AMIs cross that boundary: a launch permission. Here an AMI shared with an account, with its
organization or organizational unit, or made public, is shown to that account as EC2 shows it
(the owner's id, no user-defined tags), and can be launched and copied from there.
"""
