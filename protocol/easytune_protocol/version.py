"""The protocol version every header carries; a peer rejects any other (no negotiation yet).

Bump it whenever a message, field, limit or the framing changes incompatibly, and quote the new
value at the top of protocol/PROTOCOL.md (a test checks the two agree).
"""

PROTOCOL_VERSION = "0.1"
