"""Live task state: what the `/events/` streams are fed by, and what gateway replicas share through Redis.

- `watch`: one open stream's mailbox (keeps only the newest state).
- `hub`: one per gateway process; fans each change out to the streams watching that task, and (distributed
  mode while Redis is off or away) polls the watched tasks in one query a second.
- `redis_state`: the optional shared part: a cached state per task, and a channel every replica hears.
- `state`: `LiveState`, what the routes and the projector call (read a task, announce a change).
- `stream`: the Server-Sent Events of one stream.
"""

from transmute.services.api.live.state import LiveState, state_version

__all__ = ["LiveState", "state_version"]
