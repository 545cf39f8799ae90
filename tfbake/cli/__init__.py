"""The `tfbake` command: each module parses one command's options, calls one function of the
core, and renders its answer (render.py) with an exit code."""
