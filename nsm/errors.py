"""Errors meant for the person at the keyboard: the CLI prints them as one line, no traceback."""


class NSMError(Exception):
    """Bad input or an unusable environment (unknown domain, malformed file, unwritable directory)."""
