"""SSM's own behaviour that both Run Command and Automation rely on: running a command
document, its parameters' allowed patterns and text, where its output goes."""
