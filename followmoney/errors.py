"""Errors the library raises; only the CLI turns them into a one-line message and exit code 2."""

from __future__ import annotations


class FollowMoneyError(Exception):
    """A user-facing error: bad input, bad configuration, unusable output location."""

    exit_code = 2

    def one_line(self) -> str:
        """The message on a single line, as the CLI prints it."""
        return " ".join(str(self).split())


class InputError(FollowMoneyError):
    """A transaction or list file that cannot be used, naming the file, column and row at fault."""

    def __init__(self, message: str, *, file: str | None = None, column: str | None = None, row: int | None = None):
        self.file = file
        self.column = column
        self.row = row
        where = []
        if file is not None:
            where.append(file)
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class RuleError(FollowMoneyError):
    """One or more rule files (or rule overrides) are invalid; every problem is listed at once."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in rules: " + " | ".join(problems))


class ModelError(FollowMoneyError):
    """A model directory is missing, tampered with, or not loadable without trusting code."""


class OutputError(FollowMoneyError):
    """The output location is not a usable directory, or writing to it failed."""


class ConfigError(FollowMoneyError):
    """A configuration file or option value is invalid."""


class ResourceError(FollowMoneyError):
    """The scan would need more memory (or another resource) than the machine can give it."""
