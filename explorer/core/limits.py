"""Every cap the explorer enforces, in one record, with a *local* and a *hosted* profile.

Everything that grows with user input (modules, parameters, activations, formula
temporaries, regex length, uploads, training steps) is checked against a ``Limits``
*before* any work starts. The app picks its profile from the ``EXPLORER_PROFILE``
environment variable (``local`` or ``hosted``); notebooks get ``LOCAL``.

Example::

    from explorer.core.limits import HOSTED, profile
    profile("hosted").max_params  # 20_000_000
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

__all__ = [
    "MAX_MAGNITUDE",
    "Limits",
    "LOCAL",
    "HOSTED",
    "DEFAULT_LIMITS",
    "PROFILES",
    "profile",
    "machine_bytes",
]

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
MAX_MAGNITUDE = 1e38  # any number a user writes into values: float32 holds up to 3.4e38


def machine_bytes() -> int:
    """This machine's physical memory in bytes (8 GiB if the OS will not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * GIB


@dataclass(frozen=True)
class Limits:
    """Upper bounds on one session's work, checked before anything is allocated or run."""

    # the model, counted after every repeat and shared block is expanded
    max_params: int = 200_000_000  # parameter elements, each tied tensor once
    max_modules: int = 20_000  # modules in the built model
    max_param_names: int = 50_000  # parameter names, every alias of a tied tensor counted
    max_blocks: int = 10_000  # blocks written in the spec
    max_depth: int = 32  # nesting of blocks
    max_repeat: int = 256  # copies made by one repeat
    max_units: int = 65_536  # features, channels, embedding width
    max_embeddings: int = 1_000_000  # rows of one embedding table
    max_channels: int = 4_096
    max_kernel: int = 31
    max_stride: int = 16
    max_padding: int = 16
    max_key_chars: int = 64  # a child's key in its parent (print(net) shows "(block 0)")
    max_meta_params: int = 10**12  # parameter elements of a model built on the meta device
    max_spec_bytes: int = 1_000_000  # spec or experiment JSON text
    max_ndim: int = 8  # dimensions of one tensor: an edit's index, a rule's min_ndim
    max_file_ndim: int = 16  # dimensions of a tensor in an uploaded file
    max_name_chars: int = 1_000  # a parameter's or a checkpoint key's full dotted name
    max_file_name_chars: int = 255  # an uploaded file's name, as an experiment records it
    max_device_chars: int = 16  # a device name such as cuda:0
    # running it
    max_input_elements: int = 50_000_000
    max_input_dims: int = 5  # dimensions of the batch
    max_activation_bytes: int = 2 * GIB  # what autograd keeps for one forward pass
    max_value_bytes: int = 4 * GIB  # parameters, in the session's dtype
    # initializers
    max_rules: int = 200
    max_formula_chars: int = 1_000
    max_formula_bytes: int = 512 * MIB  # live temporaries × parameter size
    max_formula_tokens: int = 200
    max_formula_depth: int = 50  # nested parentheses, signs, powers and calls
    max_formula_draws: int = 16  # calls to uniform / normal / trunc_normal
    max_formula_name_chars: int = 32  # characters in one identifier
    max_pattern_chars: int = 500  # a filter or rule-target pattern
    # training
    max_train_steps: int = 5_000
    max_train_batch: int = 4_096  # examples in one training batch
    max_train_example_dims: int = 4  # dimensions of one training example
    max_lr: float = 10.0  # the largest learning rate
    max_snapshot_frames: int = 50
    max_snapshot_bytes: int = 256 * MIB
    # files and history
    max_upload_bytes: int = 200 * MIB  # one uploaded checkpoint; also a session's loaded blobs
    max_header_bytes: int = 10 * MIB  # a safetensors file's JSON header
    max_link_chars: int = 8_000  # the experiment in a link's URL, compressed and encoded
    max_link_bytes: int = 256 * KIB  # the link's JSON once decompressed (a zip bomb stops here)
    max_link_ops: int = 500  # value changes a link makes each opener replay
    max_link_train_steps: int = 20_000  # training steps a link makes each opener replay
    max_undo: int = 50
    history_states: int = 8  # undo/redo steps kept whole (besides training runs and loads)
    max_history_bytes: int = 512 * MIB  # what those kept states may hold beyond the current one
    max_passes: int = 16  # runs of one batch whose gradients add up (backward without zero_grad)
    max_seed: int = 2**32 - 1
    # figures: what one heatmap or histogram sends to the browser
    max_heatmap_side: int = 512  # cells along either side of a heatmap
    max_heatmap_cells: int = 64 * 1024  # 256²: no more cells than the plot has pixels
    max_histogram_bins: int = 256
    # work queue: how many heavy jobs (training, big forwards) run at once in one process
    heavy_slots: int = 2
    heavy_params: int = 5_000_000  # a forward pass of a model this big counts as heavy
    # models written as code (python -m explorer serve file.py:factory)
    allow_code: bool = True
    factory_seconds: float = 60.0
    # what one screen sends: the tree and the overview carry the rows on screen, not the model
    tree_open_rows: int = 200  # a tree with more rows than this opens with only the root open
    tree_page_rows: int = 100  # children shown under one open block before "show more"
    treemap_nodes: int = 150  # overview boxes (about 32 px square each); deeper blocks as one

    def within_machine(self) -> Limits:
        """These limits, lowered so that no single request can exceed half of this machine."""
        half = machine_bytes() // 2
        return replace(
            self,
            max_activation_bytes=min(self.max_activation_bytes, half),
            max_value_bytes=min(self.max_value_bytes, half),
            max_formula_bytes=min(self.max_formula_bytes, half),
            max_snapshot_bytes=min(self.max_snapshot_bytes, half),
        )


LOCAL = Limits().within_machine()

# A class of 60 on one server: each session may hold a modest model and may not stall others.
HOSTED = replace(
    LOCAL,
    max_params=60_000_000,  # GPT-2's shape with 2 layers (53.6 M, the 50257 × 768 embedding)
    max_modules=4_000,
    max_param_names=8_000,
    max_blocks=2_000,
    max_input_elements=1_000_000,
    max_activation_bytes=256 * MIB,
    max_value_bytes=256 * MIB,
    max_formula_bytes=128 * MIB,
    max_train_steps=1_000,
    max_link_train_steps=2_000,
    max_snapshot_bytes=32 * MIB,
    max_history_bytes=64 * MIB,
    max_upload_bytes=20 * MIB,
    heavy_slots=1,
    allow_code=False,
)

DEFAULT_LIMITS = LOCAL
PROFILES = {"local": LOCAL, "hosted": HOSTED}


def profile(name: str | None = None) -> Limits:
    """The limits of a named profile; ``None`` reads ``EXPLORER_PROFILE`` (default ``local``)."""
    key = (name or os.environ.get("EXPLORER_PROFILE") or "local").strip().lower()
    if key not in PROFILES:
        raise ValueError(f"unknown profile {key!r}: use {' or '.join(PROFILES)}")
    return PROFILES[key]
