"""The typed error hierarchy shared by every scaleplan package.

`UserInputError` and its subclasses are mistakes the user can fix (a malformed
trace, an impossible scenario, an unknown policy name). The CLI prints their
message and exits with code 2, without a traceback. Everything else is a bug and
exits with code 1.
"""

from __future__ import annotations


class ScaleplanError(Exception):
    """Base class of every error scaleplan raises on purpose."""


class UserInputError(ScaleplanError):
    """Input the user can fix. The message must say what is wrong and what to do."""


class TraceFormatError(UserInputError):
    """A trace file is missing, empty, malformed or not in the format asked for."""


class ScenarioError(UserInputError):
    """A scenario, cluster or SLO definition is invalid or impossible."""


class PolicyError(UserInputError):
    """A policy name, spec or bundle is unknown, invalid or incompatible."""


class FitError(ScaleplanError):
    """A model (forecaster, tuner) could not be fitted on the data it was given."""


class StackConfigError(UserInputError):
    """A Pulumi stack config (`Pulumi.<stack>.yaml`, `scaleplan:*` keys) is invalid."""
