"""The routing choice of an instance pool: the least-loaded ready replica, in O(log n).

The pool starts a request on the serving replica with the fewest requests in
flight that still has a free batch slot; ties go to the replica that became
ready first. Scanning every replica for that is O(n) per request, which made the
scan half the engine's time at hundreds of replicas. `LeastLoaded` keeps instead
a binary heap of int keys `busy << 32 | order` (`order`: the replica's rank in
ready order), so the smallest key is exactly the scan's choice, and each change of
a replica's load pushes one key.

Keys are invalidated lazily: a key whose load no longer matches its replica's, or
whose replica left the serving set, is dropped when it reaches the top. Keys
that never reach the top (a replica that went from 9 to 8 in flight while the
least-loaded one sits at 3) are swept by a rebuild once the heap holds twice as
many keys as serving replicas, which keeps every operation O(log n) amortised.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush, heapreplace

from sim.des.nodes import Replica

_SHIFT = 32
_ORDER_MASK = (1 << _SHIFT) - 1


class LeastLoaded:
    """Serving replicas by (requests in flight, ready order); `pick` is the routing choice.

    The caller owns `Replica.busy` and reports each change of a member's load:
    `took` right after starting a request on the replica `pick` returned, and
    `released` after a member finished one.

    Args:
        max_batch: Batch slots per replica; a replica with `busy == max_batch` is full.
        slack: Stale keys tolerated beyond twice the serving count before a rebuild
            (so that a small pool does not rebuild on every completion).
    """

    __slots__ = ("_heap", "_limit", "_members", "_order", "_rebuild_above", "_slack")

    def __init__(self, max_batch: int, slack: int = 64) -> None:
        self._limit = max_batch
        self._slack = slack
        self._heap: list[int] = []
        self._members: dict[int, Replica] = {}  # order -> serving replica
        self._order = 0
        self._rebuild_above = slack  # heap size that triggers a rebuild: 2 x members + slack

    def __len__(self) -> int:
        return len(self._members)

    def add(self, replica: Replica) -> None:
        """A replica starts serving; it ranks after every replica added before it."""
        self._order += 1
        if self._order > _ORDER_MASK:
            raise OverflowError("more than 2**32 replicas became ready in one run")
        replica.order = self._order
        self._members[self._order] = replica
        self._rebuild_above += 2
        if replica.busy < self._limit:
            heappush(self._heap, (replica.busy << _SHIFT) | self._order)

    def discard(self, replica: Replica) -> None:
        """A replica stops serving (drained, removed or lost); its keys go stale."""
        del self._members[replica.order]
        self._rebuild_above -= 2

    def pick(self) -> Replica | None:
        """The least-loaded serving replica with a free slot (ties: first ready), or None."""
        heap, members = self._heap, self._members
        while heap:
            key = heap[0]
            replica = members.get(key & _ORDER_MASK)
            if replica is not None and replica.busy == key >> _SHIFT:
                return replica
            heappop(heap)
        return None

    def took(self, replica: Replica) -> None:
        """`replica`, the one `pick` just returned, now runs one more request.

        Its key is the heap's top (nothing changed since `pick`), so it is
        replaced in place.
        """
        busy = replica.busy
        if busy < self._limit:
            heapreplace(self._heap, (busy << _SHIFT) | replica.order)
        else:
            heappop(self._heap)

    def released(self, replica: Replica) -> None:
        """`replica`, a member, now runs one request fewer."""
        heap = self._heap
        heappush(heap, (replica.busy << _SHIFT) | replica.order)
        if len(heap) > self._rebuild_above:
            self._rebuild()

    def _rebuild(self) -> None:
        limit = self._limit
        self._heap = [
            (replica.busy << _SHIFT) | order
            for order, replica in self._members.items()
            if replica.busy < limit
        ]
        heapify(self._heap)
