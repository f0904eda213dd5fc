"""The sync layer: the local cache, the wire protocol and the engine that keeps them in step.

Plain asyncio, no Qt, nothing of ours from outside this package.

- `protocol` (+ `checks`, `commands`): the wire format of docs/protocol.md, sans-I/O; the
  router imports it too.
- `session`: `ClientProtocol`, the client's state machine (frames in, effects out).
- `store`: the cache schema and migrations; `apply`: events and snapshot pages into it;
  `outbox`: the agent's actions on their way out, settled by acks.
- `client`: `SyncEngine`, the websocket and the only cache writer on one thread;
  `effects`: what it does with each effect; `changes`: what it tells its listener;
  `login`: `POST /api/login` with the standard library.
"""
