"""A session's uploaded tensors, kept by content digest so ``load`` ops can be replayed.

An experiment records a checkpoint load as ``{"op": "load", "digest": sha256, ...}``; the
tensors themselves stay in the session's ``BlobStore`` (never in a process-wide cache), so
undo and redo rebuild the same values. The store holds at most ``max_bytes``: adding a blob
first drops the ones no state or undo step refers to, then the ones the oldest undo steps
need (the workspace then drops those steps and says so).

Example::

    store = BlobStore(200 * 2**20)
    store.put(ckpt.digest, ckpt.tensors, needed=[])
    store.get(ckpt.digest)["0.weight"]
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import torch

from explorer.core.errors import SpecError

__all__ = ["BlobStore", "load_digests"]


class BlobStore:
    """Uploaded tensors by digest, bounded in bytes; per session."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._blobs: OrderedDict[str, tuple[Mapping[str, torch.Tensor], int]] = OrderedDict()

    def __repr__(self) -> str:
        return f"BlobStore({len(self._blobs)} blobs, {self.nbytes:,} of {self.max_bytes:,} bytes)"

    def __contains__(self, digest: str) -> bool:
        return digest in self._blobs

    @property
    def nbytes(self) -> int:
        return sum(size for _, size in self._blobs.values())

    def put(
        self,
        digest: str,
        tensors: Mapping[str, torch.Tensor],
        needed: Sequence[str] = (),
        protected: Iterable[str] = (),
    ) -> list[str]:
        """Hold ``tensors`` under ``digest``; return the digests dropped to make room.

        Blobs that neither ``needed`` nor ``protected`` names go first; then, while the new
        one does not fit, the ``needed`` ones from the front (the least important: the
        oldest undo step's first). ``protected`` ones (the current state's) are never
        dropped: when they leave no room, nothing changes and ``SpecError`` says so.
        """
        if digest in self._blobs:
            self._blobs.move_to_end(digest)
            return []
        size = _nbytes(tensors)
        if size > self.max_bytes:
            raise SpecError(f"the checkpoint holds {size:,} bytes, over {self.max_bytes:,}")
        kept = {d for d in protected if d in self._blobs}
        wanted = [d for d in dict.fromkeys(needed) if d in self._blobs and d not in kept]
        free = self.max_bytes - sum(self._blobs[d][1] for d in (*kept, *wanted))
        dropped = []
        for d in wanted:
            if free >= size:
                break
            free += self._blobs[d][1]
            dropped.append(d)
        if free < size:
            raise SpecError(
                f"the checkpoint holds {size:,} bytes; this session's uploads the model "
                f"needs now leave {free:,} of {self.max_bytes:,}"
            )
        self.prune(kept | set(wanted) - set(dropped))
        self._blobs[digest] = (MappingProxyType(dict(tensors)), size)
        return dropped

    def get(self, digest: str) -> Mapping[str, torch.Tensor]:
        """The tensors of a digest; ``SpecError`` when this session no longer holds them."""
        if digest not in self._blobs:
            raise SpecError(
                "this session no longer holds the checkpoint that was loaded here "
                f"({digest[:12]}…): upload it again",
                "digest",
            )
        return self._blobs[digest][0]

    def prune(self, keep: Iterable[str]) -> None:
        """Drop every blob whose digest is not in ``keep``."""
        keep = set(keep)
        for digest in [d for d in self._blobs if d not in keep]:
            del self._blobs[digest]


def load_digests(ops: Iterable) -> set[str]:
    """The digests of the load ops in an experiment's ops."""
    return {op["digest"] for op in ops if op.get("op") == "load"}


def _nbytes(tensors: Mapping[str, torch.Tensor]) -> int:
    storages = {
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors.values()
    }
    return sum(storages.values())
