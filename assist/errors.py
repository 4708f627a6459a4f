"""The service's named exceptions (the carriers' format errors come from datetime import datetime

from channels.errors)."""

from datetime import datetime

from channels.errors import BadWebhook, ChannelError, InvalidAddress, UnknownStatus

__all__ = ["AssistError", "BadPeriod", "BadWebhook", "ChannelError", "ConfigError", "DuplicateClaim", "FetchFailed",
           "ForeignCallback", "ImportFailed", "InvalidAddress", "NotDecidable", "NotKept", "NotPermitted",
           "NotSendable", "PortBusy", "ResetLinkRefused", "SendFailed", "StaleReply", "Taken", "UnknownStatus"]


class AssistError(Exception):
    """Base of the service's own errors."""


class NotSendable(AssistError):
    """A message cannot be sent (opted-out contact, wrong direction, already sent)."""


class StaleReply(AssistError):
    """Someone else (or the bot) replied on a case since the agent's page was rendered: review before sending."""

    def __init__(self, author: str | None, at: datetime):
        super().__init__(f"{author or 'the bot'} replied at {at.isoformat()}")
        self.author, self.at = author, at


class Taken(AssistError):
    """The case is a colleague's: taking it over must be asked for."""

    def __init__(self, assignee: str):
        super().__init__(f"{assignee} has this case")
        self.assignee = assignee


class ImportFailed(AssistError):
    """A members CSV file has a row that cannot be imported."""


class SendFailed(AssistError):
    """The carrier refused or failed to take an outbound message."""


class NotKept(AssistError):
    """A file a customer sent or left is not to be had: its content was never kept, or its keeper (Twilio) no
    longer has it."""


class FetchFailed(AssistError):
    """Twilio did not hand over a file it keeps: no answer in time, or an error."""


class ForeignCallback(AssistError):
    """Sandbox mode was asked to call back a URL outside the service itself."""


class PortBusy(AssistError):
    """A server cannot listen on its address: something else holds the port."""


class ConfigError(AssistError):
    """A setting is missing or invalid; the message names the variable (one line per problem)."""


class BadPeriod(AssistError):
    """A report was asked for days that make no period: the end before the start, or too many days."""


class DuplicateClaim(AssistError):
    """A claim for the same incident (booking, pet and day) exists already: one incident is claimed once."""

    def __init__(self, claim_id: int | None):
        super().__init__(f"claim #{claim_id} is already open for this incident" if claim_id else
                         "a claim is already open for this incident")
        self.claim_id = claim_id


class NotDecidable(AssistError):
    """A claim cannot take this decision now: checks still unreviewed, an amount out of bounds, a role too low."""


class NotPermitted(AssistError):
    """A user may not make this change to a teammate's account (an admin's, their own role, a promotion to admin)."""


class ResetLinkRefused(AssistError):
    """A password reset link that does not work: unknown, used, expired, or its user deactivated."""
