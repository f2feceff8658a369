"""One way to print a table of figures: a left-aligned label column, right-aligned numbers.

Shared by the benchmarks whose rows are a label and its statistics
(`reaction`, `failover`), so their tables read alike.
"""

from __future__ import annotations


def print_figure_table(header: list[str], rows: list[list[str]]) -> None:
    """Print `rows` under `header`, with a rule below the header."""
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for number, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
        if number == 0:
            print("  ".join("-" * w for w in widths))
