"""Each conversation's read prompt kept aside, so clients taking turns do not re-read each other's histories.

llama.cpp keeps one prompt in its context and reuses the longest common prefix with the next one: for one
conversation with an append-only history, a new turn reads only its new words. When several conversations
take turns, each would evict the others'. We save the context's tokens and KV cache (sequence 0 only:
`Llama.save_state` also copies a logits buffer of n_batch x n_vocab floats, ~100 MB for SmolLM2, which
makes it slow) after a turn, and put them back before that conversation's next turn.
"""
from __future__ import annotations

import ctypes
import logging
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

logger = logging.getLogger(__name__)

SEQ = 0  # llama-cpp-python's high-level API uses sequence 0 only


@dataclass
class Snapshot:
    tokens: list[int]
    kv: bytes


def snapshot(model) -> Snapshot:
    import llama_cpp

    ctx = model._ctx.ctx
    size = llama_cpp.llama_state_seq_get_size(ctx, SEQ)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, SEQ)
    return Snapshot(model.input_ids[:model.n_tokens].tolist(), bytes(buffer[:written]))


def restore(model, snap: Snapshot) -> bool:
    """Put a snapshot back; False (and an empty context) if llama.cpp refused it."""
    import llama_cpp

    ctx = model._ctx.ctx
    model._ctx.kv_cache_seq_rm(-1, 0, -1)
    buffer = (ctypes.c_uint8 * len(snap.kv)).from_buffer_copy(snap.kv)
    if llama_cpp.llama_state_seq_set_data(ctx, buffer, len(snap.kv), SEQ) == 0:
        model.n_tokens = 0
        return False
    model.input_ids[:len(snap.tokens)] = snap.tokens
    model.n_tokens = len(snap.tokens)
    if hasattr(model, "_requires_eval"):
        model._requires_eval = True  # logits are not part of the snapshot: decode before sampling
    return True


class ConversationStates:
    """Which conversation's prompt the context holds; the others' put aside (at most `capacity`, the least
    recently used dropped first). A conversation alone costs nothing: snapshots are taken only on a switch."""

    def __init__(self, save, load, capacity: int = 8) -> None:
        self.save, self.load = save, load  # () -> Snapshot; (Snapshot) -> bool (see snapshot/restore)
        self.capacity = capacity
        self._snapshots: OrderedDict[int, Snapshot] = OrderedDict()
        self._conversations: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
        self._holder: int | None = None  # id() of the conversation whose prompt the context holds

    def activate(self, conversation) -> None:
        """Before a turn: the context must hold this conversation's prompt."""
        key = id(conversation)
        if self._holder == key:
            return
        started = time.monotonic()
        holder = self._conversations.get(self._holder) if self._holder is not None else None
        if holder is not None and not holder.ended:
            self._snapshots[self._holder] = self.save()
            self._snapshots.move_to_end(self._holder)
        for stale in [k for k in self._snapshots if self._conversations.get(k) is None or self._conversations[k].ended]:
            del self._snapshots[stale]
        while len(self._snapshots) > self.capacity:
            self._snapshots.popitem(last=False)
        snap = self._snapshots.pop(key, None) if self._conversations.get(key) is conversation else None
        if snap is not None and not self.load(snap):
            logger.warning("llama.cpp refused a saved prompt; the conversation's history will be read again")
        # with no snapshot, the longest common prefix with whatever the context holds (the system prompt) is reused
        self._holder = key
        self._conversations[key] = conversation
        logger.debug("context switched to conversation %s in %.0f ms", getattr(conversation, "id", "?"),
                     1000 * (time.monotonic() - started))
