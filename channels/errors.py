"""Errors of the carriers' formats: what every layer may catch (assist.errors re-exports them)."""


class ChannelError(Exception):
    """Base of the channels' errors."""


class BadWebhook(ChannelError):
    """A carrier's request lacks a parameter the service needs, or holds one it cannot read."""


class InvalidAddress(ChannelError):
    """A phone number or email address cannot be normalized."""


class UnknownStatus(ChannelError):
    """A carrier reported a delivery status the service does not declare."""
