"""The service's named exceptions (the carriers' format errors come from channels.errors)."""

from channels.errors import BadWebhook, ChannelError, InvalidAddress, UnknownStatus

__all__ = ["AssistError", "BadWebhook", "ChannelError", "ConfigError", "ForeignCallback", "ImportFailed",
           "InvalidAddress", "NotSendable", "PortBusy", "SendFailed", "UnknownStatus"]


class AssistError(Exception):
    """Base of the service's own errors."""


class NotSendable(AssistError):
    """A message cannot be sent (opted-out contact, wrong direction, already sent)."""


class ImportFailed(AssistError):
    """A members CSV file has a row that cannot be imported."""


class SendFailed(AssistError):
    """The carrier refused or failed to take an outbound message."""


class ForeignCallback(AssistError):
    """Sandbox mode was asked to call back a URL outside the service itself."""


class PortBusy(AssistError):
    """A server cannot listen on its address: something else holds the port."""


class ConfigError(AssistError):
    """A setting is missing or invalid; the message names the variable (one line per problem)."""
