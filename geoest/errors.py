"""The error classes for bad user input (a file, a row, a value, a flag)."""


class InputError(ValueError):
    """Bad input from the user. The message names the file, row or value and what was expected.

    Mains catch this class and print its message; anything else is a bug.
    """


class RefusedValue(InputError):
    """A value a check refused, named by its symbol: "p=1.5: why", "R: why" (no value to show).

    The geo core names a value by the symbol it documents (p, q, K, R); a main that took the value
    from a flag says the same with the flag's name instead (`named`).
    """
    _NO_VALUE = object()

    def __init__(self, name: str, why: str, value=_NO_VALUE):
        self.name, self.why, self.value = name, why, value
        super().__init__(self.named(name))

    def named(self, name: str) -> str:
        """The message naming the value `name` (a symbol or a flag such as --region_mass)."""
        shown = "" if self.value is RefusedValue._NO_VALUE else f"={self.value!r}"
        return f"{name}{shown}: {self.why}"
