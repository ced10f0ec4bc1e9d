"""profile_list, the options form and user_options validation (owned by the profiles work, issue 6)."""

from traitlets.config import LoggingConfigurable


class ProfilesMixin(LoggingConfigurable):
    """Placeholder until the profiles work lands."""
