"""Which conversation a reply connection without a token belongs to, when that is certain.

A classic client (the reference `listen_and_play.py`) connects its audio connection first, then its reply
connection, and sends nothing on the latter. Its reply connection is therefore attached to a conversation
only when nothing else can claim it:

- the conversation's audio connection came from the same host, before the reply connection (the accept
  loop's rounds order them; one round either way counts as "maybe before");
- the conversation is old enough that a token client would already have sent its own reply connection
  (a waiting socket never goes to a conversation that may still prove its own);
- it is the only such conversation, and no other reply connection has it as its only candidate.

Anything else is ambiguous (two classic clients at the same instant, or another local process racing a
reply connection): it waits briefly for a token client to resolve it, then both sides are refused with a
reason rather than guessed. Nobody ever receives another client's reply.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Protocol

TOKEN_GRACE_S = 1.0  # a token client sends its reply connection within this of its audio connection
AMBIGUOUS_WAIT_S = 3.0  # how long an ambiguous reply connection may wait to be resolved


class WaitingSession(Protocol):
    """What pairing reads of a conversation waiting for its reply connection (a ClientSession)."""

    id: int
    host: str
    created: float
    order: int
    has_reply_connection: bool
    closed: bool

    def attach_reply_connection(self, conn: socket.socket) -> None: ...

    def close(self, reason: str) -> None: ...


@dataclass(eq=False)
class PendingReply:
    """A reply connection not yet paired. `tokenless` once its first moments passed without a token."""

    conn: socket.socket
    host: str
    accepted: float
    order: int = 0  # the accept loop's round
    tokenless: bool = False
    data: bytes = b""


@dataclass
class Decision:
    pairs: list[tuple[PendingReply, WaitingSession]] = field(default_factory=list)
    refused_replies: list[tuple[PendingReply, str]] = field(default_factory=list)
    refused_sessions: list[tuple[WaitingSession, str]] = field(default_factory=list)


AMBIGUOUS = ("its reply connection could not be told apart from another one; use a client that sends the "
             "pairing token (listen_and_play.py does)")


def match_classic(replies: list[PendingReply], sessions: list[WaitingSession], now: float) -> Decision:
    """Decide what can be decided now about the tokenless replies among `replies` (all pending ones,
    tokenless or still undecided) and the `sessions` still waiting for a reply connection."""
    decision = Decision()
    waiting = [s for s in sessions if not s.has_reply_connection and not s.closed]
    # One round of slack: a client accepted in the round after a reply connection may have connected
    # before it (the two ports' backlogs are drained one after the other)
    candidates_of = {id(r): [s for s in waiting if s.host == r.host and s.order <= r.order + 1] for r in replies}
    taken: set[int] = set()  # sessions decided on in this call
    done: set[int] = set()  # replies decided on in this call
    for reply in sorted((r for r in replies if r.tokenless), key=lambda r: r.accepted):
        if id(reply) in done:
            continue
        candidates = [s for s in candidates_of[id(reply)] if id(s) not in taken]
        if not candidates:
            decision.refused_replies.append((reply, "no conversation from its host was waiting for it"))
            continue
        rivals = [r for r in replies
                  if r is not reply and len(candidates_of[id(r)]) == 1 and candidates_of[id(r)][0] in candidates]
        young = any(now - s.created < TOKEN_GRACE_S for s in candidates)
        if len(candidates) == 1 and not rivals and not young:
            decision.pairs.append((reply, candidates[0]))
            taken.add(id(candidates[0]))
        elif now - reply.accepted > AMBIGUOUS_WAIT_S:
            refused = [reply] + [r for r in rivals if r.tokenless and id(r) not in done]
            decision.refused_replies.extend((r, "ambiguous: several conversations or reply connections match") for r in refused)
            decision.refused_sessions.extend((s, AMBIGUOUS) for s in candidates)
            taken.update(id(s) for s in candidates)
            done.update(id(r) for r in refused)
    return decision
