"""Issue 10's table, one test per row: what one hostile student does is refused, not suffered.

Each row runs in a child process boxed by ``resource.setrlimit``: an address-space cap of
what the interpreter holds after its imports plus a little (RLIMIT_AS) and a CPU-time cap
(RLIMIT_CPU). A regression that allocates what the row asks for, or spins for what it
asks for, kills the child and fails the test instead of eating the machine. The child also
reports its peak resident memory before and after the refused action, and the tests
assert that the refusal allocated next to nothing.

The rows go through the entry points the app uses, with the *hosted* profile: the
session's ``Workspace`` actions, ``Experiment.from_json`` (saved files and links),
``explorer.spec.validate.parse_json`` (the Build tab's JSON box) and ``compile_pattern`` (the
sidebar filter, the tables' filter and the rules' regex targets).

Row 8 (30 students clicking) is the load test: ``benchmarks/load.py``, smoke-run by
``tests/test_load_smoke.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20

# Runs first in every child: imports, then the caps, then the row's code (``body``).
_BOX = """
import json, resource, sys, time
import torch
from explorer.core.errors import ExplorerError, SpecError
from explorer.session.experiment import Experiment
from explorer.core.limits import HOSTED, LOCAL
from explorer.session.workspace import Workspace
from explorer.session.state import warm_up

warm_up()  # PyTorch's one-time meta-device imports, so they do not count as the row's memory
PROFILES = {"hosted": HOSTED, "local": LOCAL}

vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
          if line.startswith("VmSize:"))
spare = int(sys.argv[1]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (vm + spare, vm + spare))
cpu = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def refusal(action):
    '''Run ``action``; return (error type, message, peak RSS growth in MiB).'''
    before = peak_mib()
    try:
        action()
    except Exception as err:  # the test asserts which type came out
        return type(err).__name__, str(err), peak_mib() - before
    return None, None, peak_mib() - before


results = {}
"""


def boxed(body: str, spare_mib: int = 256, cpu_s: int = 120) -> dict:
    """Run ``body`` in a child capped at its current address space + ``spare_mib`` MiB."""
    code = _BOX + textwrap.dedent(body) + "\nprint(json.dumps(results))\n"
    done = subprocess.run(
        [sys.executable, "-c", code, str(spare_mib), str(cpu_s)],
        capture_output=True,
        text=True,
        timeout=cpu_s * 4,
        cwd=ROOT,
    )
    assert done.returncode == 0, f"child died ({done.returncode}): {done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_refused(result, pattern: str, kind: str = "SpecError", grew_mib: float = 32) -> None:
    """The action raised ``kind`` with a message containing ``pattern``, allocating little."""
    error, message, grew = result
    assert error == kind, (error, message)
    assert pattern in message, message
    assert grew < grew_mib, f"the refusal raised peak memory by {grew:.0f} MiB"


# --- row 1: a filter such as (.|.)*X on long names ---------------------------------------

ROW_1 = """
import re
from explorer.core.patterns import compile_pattern, select

# Python's backtracking engine must never see the student's pattern.
_compile = re._compile
def _guarded(pattern, flags):
    if isinstance(pattern, str) and "(.|.)" in pattern:
        raise AssertionError("user text reached Python's re: " + pattern)
    return _compile(pattern, flags)
re._compile = _guarded

def nested(depth, key):
    block = {"type": "linear", "in_features": 2, "out_features": 2}
    for _ in range(depth):
        child = {"type": "sequential", "children": [block]}
        if key:
            child["children"][0] = {**block, "key": key}
        block = child
    return block

for label, depth, key in (("10 deep", 10, None), ("31 deep, long keys", 31, "k" * 60)):
    ws = Workspace.from_preset("mlp", HOSTED)
    ws.change(spec=nested(depth, key))
    names = list(ws.state.tree.params)
    before = peak_mib()
    started = time.process_time()
    pattern = compile_pattern("(.|.)*X", "full", HOSTED, "filter")
    kept = select(names * 1000, pattern)
    prefix = select(names * 1000, compile_pattern("(.|.)*X", "prefix", HOSTED, "filter"))
    ws.change(rules=[{"init": "zeros", "regex": "(.|.)*X"}, {"init": "ones", "regex": ".*bias"}])
    results[label] = {
        "longest": max(len(n) for n in names),
        "kept": kept + prefix,
        "bias": ws.state.provenance[names[-1]],
        "cpu": time.process_time() - started,
        "grew": peak_mib() - before,
    }
results["too long"] = refusal(lambda: compile_pattern("a" * 10_000, "full", HOSTED, "filter"))
"""


def test_row_1_a_catastrophic_regex_runs_in_linear_time_and_never_in_pythons_re():
    """(.|.)*X over 10- and 31-deep names: no match, at once, as a filter and as a rule target.

    Python's ``re`` froze the server for 11 s on 10 levels; a guard in the child fails the
    test if the pattern reaches ``re`` at all, and RLIMIT_CPU kills a backtracking engine.
    """
    results = boxed(ROW_1, cpu_s=60)
    assert results["10 deep"]["longest"] == len("0." * 10 + "weight")
    assert results["31 deep, long keys"]["longest"] > 1_800
    for label in ("10 deep", "31 deep, long keys"):
        row = results[label]
        assert row["kept"] == []  # no name holds an X
        assert row["bias"] == 1  # the rule after the pattern that matches nothing applied
        assert row["grew"] < 32
    assert_refused(results["too long"], "500")  # Limits.max_pattern_chars


# --- row 2: a doubling chain of shared blocks --------------------------------------------

ROW_2 = """
def chain(k):
    blocks = [{"type": "linear", "in_features": 4, "out_features": 4, "name": "b0"}]
    for i in range(1, k + 1):
        twice = [{"type": "shared", "ref": f"b{i - 1}"}, {"type": "shared", "ref": f"b{i - 1}"}]
        blocks.append({"type": "sequential", "name": f"b{i}", "children": twice})
    return {"type": "sequential", "children": blocks}

for name, limits in PROFILES.items():
    ws = Workspace.from_preset("mlp", limits)
    version = ws.version
    for k in (15, 20, 30):
        spec = chain(k)
        results[f"{name} change {k}"] = refusal(lambda: ws.change(spec=spec))
        text = Experiment(spec).to_json()
        results[f"{name} file {k}"] = refusal(lambda: Experiment.from_json(text, limits))
    results[f"{name} size"] = len(json.dumps(chain(30)))
    results[f"{name} unchanged"] = ws.version == version and ws.history.undo == ()
results["hosted change 11"] = refusal(lambda: Workspace.from_preset("mlp", HOSTED).change(
    spec=chain(11)))

# k = 10 fits the local budget (4,084 modules): the model is built, and what one screen
# sends stays bounded (the run that took 66 s and sent 231 MB drew every row).
from ui.tree_rows import tree_rows, treemap_rows
ws = Workspace.from_preset("mlp", LOCAL)
before = peak_mib()
ws.change(spec=chain(10))
tree = ws.state.tree
payload = json.dumps([tree_rows(tree, limits=LOCAL), treemap_rows(tree, LOCAL)], default=str)
results["local 10"] = {
    "names": len(tree.params), "payload": len(payload), "grew": peak_mib() - before
}
"""


def test_row_2_a_doubling_chain_of_shared_blocks_is_refused_by_arithmetic():
    """b_i = sequential[shared b_{i-1}, shared b_{i-1}] to k = 11 to 30: refused, no model.

    It took 22 s to validate at k = 20 (6 h at k = 30) and 66 s and +413 MiB per rerun at
    k = 10. The counts are arithmetic (tests/test_spec.py checks them against PyTorch's).
    """
    results = boxed(ROW_2, cpu_s=60)
    for name in ("hosted", "local"):
        assert results[f"{name} size"] < 4_000
        assert results[f"{name} unchanged"]
        for k in (15, 20, 30):
            for how in ("change", "file"):
                assert_refused(results[f"{name} {how} {k}"], "modules once repeat and shared")
    assert "4,294,967,264 modules" in results["hosted change 30"][1]
    assert "the limit is 4,000" in results["hosted change 30"][1]
    assert_refused(results["hosted change 11"], "8,179 modules")
    local = results["local 10"]
    # weight and bias under each path of b0 … b10 (b_i has 2^i): 2 × (2^11 − 1) names
    assert local["names"] == 2 * (2**11 - 1)
    assert local["payload"] < 200_000, local
    assert local["grew"] < 64, local


# --- row 3: repeat(256, repeat(256, repeat(256, relu))) ---------------------------------

ROW_3 = """
relu = {"type": "relu"}
spec = {"type": "repeat", "times": 256, "block": relu}
for _ in range(2):
    spec = {"type": "repeat", "times": 256, "block": spec}
for name, limits in PROFILES.items():
    ws = Workspace.from_preset("mlp", limits)
    version = ws.version
    results[f"{name} change"] = refusal(lambda: ws.change(spec=spec))
    text = json.dumps({"spec": spec})
    results[f"{name} file"] = refusal(lambda: Experiment.from_json(text, limits))
    results[f"{name} unchanged"] = ws.version == version
"""


def test_row_3_nested_repeats_with_no_parameters_are_refused_before_building():
    """16.8 M ReLU modules (no parameter at all) are counted, not built: +906 MiB before."""
    results = boxed(ROW_3, cpu_s=60)
    for name in ("hosted", "local"):
        assert results[f"{name} unchanged"]
        for how in ("change", "file"):
            assert_refused(results[f"{name} {how}"], "16,843,009 modules once repeat")


# --- row 4: a 1 → 4096 channel convolution on a megapixel -------------------------------

ROW_4 = """
conv = {"type": "conv2d", "out_channels": 4096, "kernel_size": 1, "padding": 16}
for name, limits in PROFILES.items():
    for lazy in (False, True):
        layer = conv if lazy else {**conv, "in_channels": 1}
        spec = {"type": "sequential", "children": [layer]}
        ws = Workspace.from_preset("mlp", limits)
        ws.change(spec=spec, input_shape=(1, 1, 1000, 1000))
        version = ws.version
        label = f"{name} {'lazy' if lazy else 'eager'}"
        results[f"{label} forward"] = refusal(ws.forward)
        results[f"{label} backward"] = refusal(ws.backward)
        results[f"{label} unchanged"] = ws.version == version and ws.last_run is None
        results[f"{label} reinit"] = refusal(ws.reinitialize)
"""


def test_row_4_a_forward_pass_asking_for_17_gb_is_refused_by_the_meta_probe():
    """conv2d(1→4096, k=1, padding=16) on (1, 1, 1000, 1000): measured on meta, refused.

    Linux granted the 17.4 GB and then killed the server. The box leaves 512 MiB.
    A lazy conv2d is refused at its first forward (materialize) the same way.
    """
    results = boxed(ROW_4, spare_mib=512, cpu_s=120)
    for name in ("hosted", "local"):
        for label in (f"{name} eager", f"{name} lazy"):
            assert results[f"{label} unchanged"]
            assert_refused(results[f"{label} forward"], "GiB of activations")
            assert_refused(results[f"{label} backward"], "GiB of activations")
        assert "16.3 GiB of activations" in results[f"{name} eager backward"][1]
        # re-initializing an eager model runs nothing; a lazy one needs its first forward
        assert results[f"{name} eager reinit"][0] is None
        assert_refused(results[f"{name} lazy reinit"], "GiB of activations")
    assert "the limit is 256.0 MiB" in results["hosted eager backward"][1]


# --- row 5: 38 live temporaries on a 4096² weight ---------------------------------------

ROW_5 = """
expr = "-w*(" * 37 + "-w*w" + ")" * 37
big = {"type": "sequential", "children": [
    {"type": "linear", "in_features": 4096, "out_features": 4096, "bias": False}]}
ws = Workspace.from_preset("mlp", HOSTED)
ws.change(spec=big, rules=[{"init": "constant", "value": 0.5, "target": "*"}])
before = peak_mib()
ws.change(rules=[{"init": "formula", "expr": expr, "target": "*"}])  # w: the values now, 0.5
results["float32"] = ws.state.module.get_parameter("0.weight")[0, 0].item()
results["float32 grew"] = peak_mib() - before
ws.move(dtype="float64")
before = peak_mib()
ws.reinitialize()
results["float64"] = ws.state.module.get_parameter("0.weight")[-1, -1].item()
results["float64 dtype"] = str(ws.state.module.get_parameter("0.weight").dtype)
results["float64 grew"] = peak_mib() - before
"""


def test_row_5_a_formula_with_38_temporaries_on_4096_squared_stays_in_bounded_memory():
    """The formula runs in row chunks: well under +2.6 GB (float32) or +5.1 GB (float64).

    The box leaves 1 GiB above the 64 MiB model: the new float32 values (64 MiB), the
    float64 copy (128 MiB) and the chunk's temporaries fit; 38 whole-tensor temporaries
    (2.5 GiB) do not. ``w`` is what the weight holds when the rule runs: the value the rule
    before it set (0.5).
    """
    results = boxed(ROW_5, spare_mib=1024, cpu_s=240)
    assert results["float32"] == 0.5**39  # (-0.5)^38 · 0.5 on the constant 0.5
    assert results["float64 dtype"] == "torch.float64"
    # rules draw in float32: the default values (|w| < 1/64) to the 39th power underflow to 0
    assert results["float64"] == 0.0
    assert results["float32 grew"] < 400
    assert results["float64 grew"] < 600


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_5_values_equal_the_same_product_in_plain_pytorch(dtype):
    """The chunked 38-temporary formula gives plain PyTorch's values, bit for bit."""
    import torch

    from explorer.init.formula import parse_formula

    current = torch.randn(64, 32, generator=torch.Generator().manual_seed(0)).to(
        getattr(torch, dtype)
    )
    formula = parse_formula("-w*(" * 37 + "-w*w" + ")" * 37)
    got = formula.evaluate((64, 32), current=current, dtype=current.dtype)
    expected = -current * current
    for _ in range(37):
        expected = -current * expected
    assert torch.equal(got, expected)


# --- row 6: a failing action must not swap the model ------------------------------------
# tests/test_state.py::test_issue_10_row_6_a_rule_dividing_by_zero_does_not_swap_the_model
# is the reproducer; tests/test_state.py's state machine plants failures in every action.
# Here the same reproducer runs in the box with the hosted profile, as the server runs it.

ROW_6 = """
from explorer.spec.presets import PRESETS
ws = Workspace.from_preset("mlp", HOSTED)
ws.backward()
before = (ws.state.fingerprint(), ws.version, ws.experiment, len(ws.history.undo))
bad = [{"init": "formula", "target": "*.weight", "expr": "1 / 0"}]
results["change"] = refusal(lambda: ws.change(spec=PRESETS["rgnet"].spec, rules=bad))
after = (ws.state.fingerprint(), ws.version, ws.experiment, len(ws.history.undo))
results["unchanged"] = before == after
results["grads kept"] = ws.last_run is not None
"""


def test_row_6_a_failing_rule_on_a_new_spec_keeps_the_previous_model():
    """A rule dividing by zero on a new spec: SpecError, and the model, run and undo stay."""
    results = boxed(ROW_6, cpu_s=60)
    assert_refused(results["change"], "produced inf/nan values")
    assert results["unchanged"] and results["grads kept"]


# --- row 7: malformed input is a SpecError that names the place -------------------------

ROW_7 = """
from explorer.spec.validate import parse_json, validate
texts = {
    "type is a list": '{"type": ["linear"]}',
    "10,000 deep list": "[" * 10_000 + "]" * 10_000,
    "10,000 deep object": '{"type": ' * 10_000 + "1" + "}" * 10_000,
    "5,000 digits": '{"type": "linear", "out_features": ' + "9" * 5_000 + "}",
}
for label, text in texts.items():
    ws = Workspace.from_preset("mlp", HOSTED)
    def via_build_tab(text=text, ws=ws):
        spec = parse_json(text, HOSTED)
        validate(spec, HOSTED)
        ws.change(spec=spec)
    results[f"{label} build tab"] = refusal(via_build_tab)
    file = '{"spec": ' + text + "}"
    results[f"{label} file"] = refusal(lambda file=file: Experiment.from_json(file, HOSTED))
ws = Workspace.from_preset("mlp", HOSTED)
results["set 1e39"] = refusal(lambda: ws.edit("0.weight", "set", 1e39, (0, 0)))
ws.move(dtype="float64")
results["set 1e39 float64"] = refusal(lambda: ws.edit("0.weight", "set", 1e39, (0, 0)))
op = {"op": "edit", "name": "0.weight", "how": "set", "value": 1e39, "index": [0, 0]}
saved = json.dumps({**ws.experiment.to_dict(), "ops": [op]})
results["set 1e39 file"] = refusal(lambda: Experiment.from_json(saved, HOSTED))
"""


def test_row_7_malformed_input_is_a_spec_error_naming_the_place():
    """A list as a type, JSON 10,000 deep, a 5,000-digit number, "set 1e39": all SpecError.

    They were TypeError, RecursionError, ValueError and RuntimeError.
    """
    results = boxed(ROW_7, cpu_s=60)
    for how in ("build tab", "file"):
        assert_refused(results[f"type is a list {how}"], "type: unknown block type ['linear']")
        for label in ("10,000 deep list", "10,000 deep object", "5,000 digits"):
            assert_refused(results[f"{label} {how}"], "not valid JSON: ")
    assert_refused(results["10,000 deep list build tab"], "nested too deeply")
    assert_refused(results["10,000 deep object build tab"], "nested too deeply")
    assert_refused(results["5,000 digits build tab"], "a number has too many digits")
    # above 1e38 an edit is refused in every dtype, before the value is written
    assert_refused(results["set 1e39"], "edit.value: must be a finite number of at most 1e38")
    assert_refused(results["set 1e39 float64"], "edit.value: must be a finite number")
    assert_refused(results["set 1e39 file"], "ops[0].value: must be a finite number")


def test_a_sequential_of_5000_blocks_opens_locally_and_is_refused_when_hosted():
    """Issue 9 asks the app for models of 5,000 blocks: a Sequential holding 5,000 Linear
    layers (5,001 blocks written) passes the local limits; a hosted session's stop at 2,000."""
    from explorer.core.errors import SpecError
    from explorer.core.limits import HOSTED, LOCAL
    from explorer.spec.validate import validate

    layer = {"type": "linear", "in_features": 2, "out_features": 2}
    spec = {"type": "sequential", "children": [layer] * 5_000}
    assert validate(spec, LOCAL).param_count == 5_000 * 6
    with pytest.raises(SpecError, match="more than 2,000 blocks"):
        validate(spec, HOSTED)
