"""Exceptions that carry a user-facing, one-line message."""


class HadisError(ValueError):
    """Bad input or an impossible request; the message is meant for the user as is."""


class ProfileError(HadisError):
    """A profile file or name is invalid."""


class PlanningError(HadisError):
    """Planner inputs are invalid (e.g. an SLO that no model can meet)."""
