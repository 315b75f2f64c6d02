"""Tracking sessions of the service: one tracker per session, frames in order, idle expiry."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Session:
    """One client's video: its tracker, the number of frames it has sent, when it was last used."""

    tracker: Any
    frames: int = 0
    last_used: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Sessions:
    """Sessions by id; a session idle for more than ``ttl_s`` seconds is forgotten (checked on
    every access, so no background thread), and at most ``max_sessions`` live at once."""

    def __init__(self, new_tracker: Callable[[], Any], ttl_s: float, max_sessions: int = 64,
                 clock: Callable[[], float] = time.monotonic):
        self.new_tracker, self.ttl_s, self.max_sessions, self.clock = new_tracker, float(ttl_s), max_sessions, clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        for sid in [s for s, v in self._sessions.items() if now - v.last_used > self.ttl_s]:
            del self._sessions[sid]

    def create(self) -> str | None:
        """A new session's id, or ``None`` when ``max_sessions`` are live."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            if len(self._sessions) >= self.max_sessions:
                return None
            sid = secrets.token_hex(8)
            self._sessions[sid] = Session(self.new_tracker(), last_used=now)
            return sid

    def get(self, sid: str) -> Session | None:
        """The live session ``sid`` (its idle clock restarted), or ``None`` (unknown or expired)."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            session = self._sessions.get(sid)
            if session is not None:
                session.last_used = now
            return session

    def delete(self, sid: str) -> bool:
        with self._lock:
            return self._sessions.pop(sid, None) is not None

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._sessions)
