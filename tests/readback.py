"""Read a downloaded file back in a fresh interpreter and print what it holds, as JSON.

``python tests/readback.py PATH KIND [ROOT]`` with KIND one of safetensors, pt, experiment,
csv, train_csv, script; tests/test_downloads.py compares the output with the live state.
"""

import hashlib
import json
import sys

import torch


def digest(t: torch.Tensor) -> list:
    """dtype, shape and the sha256 of the raw bytes: equal only when bit for bit equal."""
    t = t.detach().cpu().contiguous().reshape(-1)
    raw = hashlib.sha256(t.view(torch.uint8).numpy().tobytes()).hexdigest()
    return [str(t.dtype), list(t.shape if t.dim() else ()), raw]


def main(path: str, kind: str, root: str = "net") -> None:
    if kind == "safetensors":
        from safetensors import safe_open
        from safetensors.torch import load_file

        from explorer.io.checkpoints import read_checkpoint

        stored = load_file(path)
        with safe_open(path, "pt") as f:
            meta = f.metadata()
        with open(path, "rb") as f:
            ckpt = read_checkpoint(f.read(), path)
        ties = sorted(sorted(g) for g in ckpt.tree().tied_groups)
        keys = {k: digest(v) for k, v in ckpt.tensors.items()}
        out = {"keys": keys, "ties": ties, "stored": sorted(stored), "meta": meta}
    elif kind == "pt":
        sd = torch.load(path, weights_only=True)
        groups: dict = {}
        for k, v in sd.items():
            groups.setdefault((v.untyped_storage().data_ptr(), v.storage_offset()), []).append(k)
        ties = sorted(sorted(g) for g in groups.values() if len(g) > 1)
        out = {"keys": {k: digest(v) for k, v in sd.items()}, "ties": ties}
    elif kind == "experiment":
        from explorer.session.experiment import Experiment
        from explorer.session.state import realize

        with open(path) as f:
            exp = Experiment.from_json(f.read())
        out = {"json": exp.to_json(), "fingerprint": realize(exp).fingerprint()}
    elif kind == "csv":
        import pandas as pd

        frame = pd.read_csv(path, keep_default_na=False)
        sys.stdout.write(frame.to_csv(index=False, lineterminator="\n"))
        return
    elif kind == "train_csv":
        import pandas as pd

        frame = pd.read_csv(path)
        out = {
            c: digest(torch.tensor(frame[c].to_numpy(), dtype=torch.float32))[2]
            for c in frame.columns
            if c != "step"
        }
    else:  # a script: run it and read the model it builds
        import runpy

        net = runpy.run_path(path)[root]
        out = {"keys": {k: digest(v) for k, v in net.state_dict().items()}}
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
