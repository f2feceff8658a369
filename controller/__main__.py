"""Lets `python -m controller` behave exactly like the `controller` script."""

from controller.cli.commands import main

main()
