"""Lets `python -m controller` behave exactly like the `controller` script."""

from controller.cli import main

main()
