"""The command line: click commands (`commands`), what they print (`report`), `logs`.

`main` is the `controller` script's entry point (pyproject `[project.scripts]`).
"""

from controller.cli.commands import main

__all__ = ["main"]
