"""Channels: parse what a carrier delivers into an InboundMessage and send replies back."""
