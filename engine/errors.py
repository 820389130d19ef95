"""The one exception type for user mistakes.

Anything raised as :class:`UserError` (or ``ValueError``/``OSError`` at the CLI
edge) is shown to the user as one line, never as a traceback.
"""


class UserError(ValueError):
    """A problem with the user's input, files or settings; the message says what and how to fix it."""
