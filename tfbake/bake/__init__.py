"""Baking: the SSM documents tfbake ships (runbook, recipe) and what runs them."""
