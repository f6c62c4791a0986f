"""A link that rebuilds the model: the experiment, compressed, in the page's URL.

The token is ``e1.`` (the link format) followed by the experiment's compact JSON, compressed
with zlib and written in URL-safe base64. Opening it rebuilds the same model with the same
values (``explorer.session.state.realize``): edits, moves and runs are replayed from the experiment,
so the same link gives every student the same model, bit for bit on the CPU.

Everything about a link is checked before anything is built: its length, its format
version, the base64, the zlib checksum, the size once decompressed (read in bounded steps,
so a zip bomb stops at ``Limits.max_link_bytes``), and the experiment itself. A model written
as code or holding an uploaded checkpoint cannot travel in a link: the receiver has neither.

Example::

    token = encode(Experiment.from_preset("tied").replace(seed=3))
    decode(token) == Experiment.from_preset("tied").replace(seed=3)   # True
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib

from explorer.core.errors import SpecError
from explorer.core.frozen import canonical
from explorer.core.limits import DEFAULT_LIMITS, Limits
from explorer.session.experiment import Experiment

__all__ = ["LINK_FORMAT", "QUERY_KEY", "encode", "decode", "linkable", "on_cpu", "url"]

LINK_FORMAT = 1
QUERY_KEY = "model"  # ?model=e1.…
_PREFIX = re.compile(r"e([0-9]{1,6})\.")
_BASE64 = re.compile(r"[A-Za-z0-9_-]*")


def linkable(exp: Experiment) -> str | None:
    """Why this experiment cannot be put in a link, or None when it can."""
    if exp.source is not None:
        return "a model written as code cannot be put in a link: share the file instead"
    if any(op.get("op") == "load" for op in exp.ops):
        return (
            "an experiment with a loaded checkpoint cannot be put in a link: share the "
            "checkpoint and the experiment JSON instead"
        )
    return None


def encode(exp: Experiment, limits: Limits = DEFAULT_LIMITS) -> str:
    """The link token of an experiment; ``SpecError`` when it cannot or would not fit."""
    reason = linkable(exp) or _replay_cost(exp, limits)
    if reason is not None:
        raise SpecError(reason)
    packed = zlib.compress(canonical(on_cpu(exp).to_dict()).encode(), 9)
    token = f"e{LINK_FORMAT}." + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()
    if len(token) > limits.max_link_chars:
        raise SpecError(
            f"the experiment needs a link of {len(token):,} characters, over the limit of "
            f"{limits.max_link_chars:,}: download it as JSON instead"
        )
    return token


def decode(token: object, limits: Limits = DEFAULT_LIMITS) -> Experiment:
    """The experiment a link token holds; ``SpecError`` with one line saying what is wrong."""
    if not isinstance(token, str) or not token:
        raise SpecError("the link holds no model")
    if len(token) > limits.max_link_chars:
        raise SpecError(
            f"the link is {len(token):,} characters long, over the limit of "
            f"{limits.max_link_chars:,}"
        )
    prefix = _PREFIX.match(token)
    if prefix is None:
        raise SpecError("the link is not a Parameter Explorer link (it should start with e1.)")
    version = int(prefix[1])
    if version > LINK_FORMAT:
        raise SpecError(
            f"the link was made by a newer explorer (link format {version}); this one reads "
            f"format {LINK_FORMAT}"
        )
    body = token[prefix.end() :]
    if _BASE64.fullmatch(body) is None or len(body) % 4 == 1:
        raise SpecError("the link is damaged: it has characters a link cannot hold")
    try:
        packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise SpecError("the link is damaged: it is not valid base64") from None
    text = _inflate(packed, limits.max_link_bytes)
    exp = Experiment.from_json(text, limits)
    reason = linkable(exp) or _replay_cost(exp, limits)
    if reason is not None:
        raise SpecError(reason)
    return on_cpu(exp)


def _replay_cost(exp: Experiment, limits: Limits) -> str | None:
    """Why opening this link would replay too much work, or None."""
    if len(exp.ops) > limits.max_link_ops:
        return f"the link replays {len(exp.ops):,} value changes, over {limits.max_link_ops:,}"
    steps = sum(op.get("steps", 0) for op in exp.ops if op.get("op") == "train")
    if steps > limits.max_link_train_steps:
        return f"the link replays {steps:,} training steps, over {limits.max_link_train_steps:,}"
    return None


def on_cpu(exp: Experiment) -> Experiment:
    """The experiment with every device set to the CPU (dtypes kept): a link's values are the
    CPU's, the same on every student's machine."""
    ops = tuple({**op, "device": "cpu"} if op.get("op") == "move" else op for op in exp.ops)
    return exp.replace(device="cpu", ops=ops)


def url(base: str, token: str) -> str:
    """The page address ``base`` (any query dropped) with the link token as its query."""
    return f"{base.split('?', 1)[0].split('#', 1)[0]}?{QUERY_KEY}={token}"


def _inflate(packed: bytes, limit: int) -> bytes:
    """Decompress at most ``limit`` bytes; more, a bad checksum or a cut stream is refused."""
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(packed, limit + 1)
    except zlib.error:
        raise SpecError("the link is damaged: its data does not decompress") from None
    if len(text) > limit or inflater.unconsumed_tail:
        raise SpecError(f"the link's model is larger than {limit:,} bytes once unpacked")
    if not inflater.eof:
        raise SpecError("the link is cut short: copy the whole link")
    if inflater.unused_data:
        raise SpecError("the link is damaged: it has data after its end")
    return text
