"""What every absl main shares: bad input ends in one clear line, not a traceback."""
import functools
import sys

from geoest.errors import InputError


def clear_input_errors(main):
    """Wraps an absl `main(argv)`: an InputError prints `error: <message>` and exits with 2."""

    @functools.wraps(main)
    def wrapped(argv):
        try:
            return main(argv)
        except InputError as err:
            # Gin appends "In call to configurable ..." lines to errors raised inside configurables.
            message = str(err).split("\n  In call to configurable")[0]
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapped
