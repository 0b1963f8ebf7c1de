"""easytune_protocol: the wire protocol shared by the engine and the Blender add-on.

Pure Python (msgpack, numpy). The message catalogue, encoding and the client arrive with the
engine-server work; for now this holds the protocol version every message will carry.
"""

PROTOCOL_VERSION = "0.1"
