"""The error the orchestration layer reports to the user in one message."""

from __future__ import annotations

from ibcore.core.profiles import ProfileError


class PipelineError(ProfileError):
    """A profile, notebook or book build problem, with a message meant for the user."""
