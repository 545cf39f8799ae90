"""SSM Automation: the engine that runs a runbook step by step, its step actions, and the
expressions its inputs and outputs are written in."""
