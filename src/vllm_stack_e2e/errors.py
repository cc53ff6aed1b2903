"""Every exception the harness raises on purpose, in one place.

Messages are one line: what is wrong, what was seen, and what the user should do next.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of the harness's own errors."""


class ConfigError(HarnessError):
    """Bad input (an option, a values file, an environment variable), found before installing."""


class ProvisionError(HarnessError):
    """A tool or binary could not be found, downloaded or built."""


class LabError(HarnessError):
    """The local lab could not be brought up, or a component of it died."""


class WaitTimeout(HarnessError):
    """A named wait ran out of budget; the message says what it last saw."""


class CommandError(HarnessError):
    """An external command (helm, kubectl) failed."""
