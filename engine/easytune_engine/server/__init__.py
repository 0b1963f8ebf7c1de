"""The engine server: `easytune-engine serve`, the ZeroMQ front of the engine.

Reading order: `config` (what a server is started with: endpoints, device, data directory),
`datadir` (the lock that keeps one engine per data directory), `store` (SQLite: clips, rankings,
idempotency), `models` (the backbones it serves), `motion` (features -> the clip a client gets),
`worker` (generation off the socket thread), `handlers` (one function per request type), `loop`
(sockets, decoding, replies, the request log), `cli` (the command). The wire format is
`easytune_protocol`'s; protocol/PROTOCOL.md documents it.
"""
