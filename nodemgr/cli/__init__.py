"""Commands: thin wrappers that parse arguments, call the layers below and print.

Each command is a function taking ``argv`` (without the program name) and returning the
exit code; ``pyproject.toml`` exposes them as console scripts and ``bin/`` as files.
"""
