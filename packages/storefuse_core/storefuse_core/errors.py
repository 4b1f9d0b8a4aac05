"""Errors that carry one clear message for the operator (bad layout, bad scenario, bad frame)."""


class StorefuseError(Exception):
    """Base of every error the project raises on purpose."""


class LayoutError(StorefuseError):
    """A store layout file is invalid; the message names the file and the offending entry."""


class ScenarioError(StorefuseError):
    """A scenario file is invalid; the message names the file and the offending entry."""


class FrameError(StorefuseError):
    """A serial frame could not be decoded (garbage, checksum, wrong field count)."""
