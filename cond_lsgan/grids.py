"""Sample grids for training and `sample`: which classes to show.

For thousands of classes a grid shows a fixed subset (`spread_classes`): rows of
classes spread over the class table, columns of shared noise, so one picture compares
classes and successive pictures compare steps.
"""

from __future__ import annotations


def spread_classes(count: int, rows: int) -> list[int]:
    """Up to `rows` class indices spread evenly over [0, count), first and last included."""
    if count <= rows:
        return list(range(count))
    return [round(i * (count - 1) / (rows - 1)) for i in range(rows)]
