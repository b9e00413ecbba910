"""The one error class for bad user input (a file, a row, a value, a flag)."""


class InputError(ValueError):
    """Bad input from the user. The message names the file, row or value and what was expected.

    Mains catch this class and print its message; anything else is a bug.
    """
