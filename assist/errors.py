"""The service's named exceptions."""


class AssistError(Exception):
    """Base of the service's own errors."""


class BadWebhook(AssistError):
    """A webhook request lacks a parameter the service needs."""


class InvalidAddress(AssistError):
    """A phone number or email address cannot be normalized."""


class UnknownStatus(AssistError):
    """A carrier reported a delivery status the service does not declare."""


class NotSendable(AssistError):
    """A message cannot be sent (opted-out contact, wrong direction, already sent)."""


class ImportFailed(AssistError):
    """A members CSV file has a row that cannot be imported."""


class SendFailed(AssistError):
    """The carrier refused or failed to take an outbound message."""


class PortBusy(AssistError):
    """A server cannot listen on its address: something else holds the port."""
