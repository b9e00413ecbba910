"""What every absl main shares: bad input ends in one clear line and exit status 2, not a traceback."""
import functools
import sys

from geoest.errors import InputError

EXIT_BAD_INPUT = 2


def clear_input_errors(main):
    """Wraps an absl `main(argv)`: an InputError prints `error: <message>` on one line of stderr and
    exits with status 2. Every geoest main goes through it."""

    @functools.wraps(main)
    def wrapped(argv):
        try:
            return main(argv)
        except InputError as err:
            # Gin appends "In call to configurable ..." lines to errors raised inside configurables.
            message = str(err).split("\n  In call to configurable")[0]
            print("error: " + " ".join(message.split()), file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)

    return wrapped
