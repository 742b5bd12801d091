"""The simulator's Salesforce Streaming API: an event bus with replay (``bus``) and a Bayeux server
(``server``). Shapes and error strings: Streaming API Developer Guide v67, facts section B.
"""

from forwarder.testing.simulator.cometd.bus import RTEM_CHANNELS, EventBus
from forwarder.testing.simulator.cometd.server import (
    AUTH_INVALID,
    AUTH_MISSING,
    CONNECTION_LIMIT,
    HANDSHAKE_DENIED,
    RECONNECT_TIMEOUT,
    SERVER_TOO_BUSY,
    STALE_REPLAY,
    UNKNOWN_CHANNEL,
    UNKNOWN_CLIENT,
    CometdServer,
    Faults,
    serve,
)

__all__ = [
    "AUTH_INVALID",
    "AUTH_MISSING",
    "CONNECTION_LIMIT",
    "HANDSHAKE_DENIED",
    "RECONNECT_TIMEOUT",
    "RTEM_CHANNELS",
    "SERVER_TOO_BUSY",
    "STALE_REPLAY",
    "UNKNOWN_CHANNEL",
    "UNKNOWN_CLIENT",
    "CometdServer",
    "EventBus",
    "Faults",
    "serve",
]
