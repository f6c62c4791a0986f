"""Per-use gradient capture: what each call of a module sent to its parameters, and its cost."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import explorer.engine.uses
from explorer.engine.run import make_input, run
from explorer.engine.uses import OUTSIDE_LABEL, use_scale, uses_sum_error
from explorer.view.figures import uses_figure
from tests.models import tied_net

REPO_ROOT = Path(__file__).resolve().parent.parent

# A child process runs each model once, then caps its address space at what it uses plus a
# headroom in MiB and runs it again: a capture that copies gradients needs more and fails.
MEMORY_CHILD = textwrap.dedent(
    """
    import gc, resource, sys
    import torch
    from torch import nn
    from explorer.engine.run import make_input, run

    torch.set_num_threads(1)
    MIB, UNCAPPED = 1 << 20, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)

    class TiedLM(nn.Module):  # a 64 MiB embedding that is also the output head
        def __init__(self):
            super().__init__()
            self.emb, self.head = nn.Embedding(16384, 1024), nn.Linear(1024, 16384, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, tokens):
            return self.head(self.emb(tokens))

    def capped(model, x, headroom_mib, keep_grads=False):
        run(model, x)
        if not keep_grads:
            model.zero_grad(set_to_none=True)
        gc.collect()
        size = next(int(line.split()[1]) for line in open("/proc/self/status")
                    if line.startswith("VmSize")) << 10
        resource.setrlimit(resource.RLIMIT_AS, (size + headroom_mib * MIB, UNCAPPED[1]))
        try:
            run(model, x)
            return "ok"
        except (MemoryError, RuntimeError) as err:
            return f"out of memory: {str(err)[:200]}"
        finally:
            resource.setrlimit(resource.RLIMIT_AS, UNCAPPED)

    single = nn.Sequential(nn.Linear(4096, 4096))  # one 64 MiB weight, used once
    print(capped(single, make_input((2, 4096)), int(sys.argv[1])))
    print(capped(single, make_input((2, 4096)), int(sys.argv[3]), keep_grads=True))
    del single
    print(capped(TiedLM(), make_input((2, 8), "tokens", high=16384), int(sys.argv[2])))
    """
)
SINGLE_HEADROOM = 96  # MiB: 1.5 copies of the 64 MiB gradient; a clone would need 2
TIED_HEADROOM = 224 + 64  # MiB: plain backward's 224 (measured) and one 64 MiB buffer
AGAIN_HEADROOM = 32  # MiB: the first run's 64 MiB gradient is freed before the second's


@pytest.fixture(scope="module")
def capped_runs() -> list[str]:
    """'ok' or the error, run under a cap: the single-use model, the same again with the
    first run's gradients still held by its parameters, then the tied model."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            MEMORY_CHILD,
            *map(str, (SINGLE_HEADROOM, TIED_HEADROOM, AGAIN_HEADROOM)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_single_use_gradient_is_the_parameters_grad_itself():
    """A parameter used once has .grad as its one use: the same tensor, not a copy."""
    net = tied_net()
    result = run(net, make_input((2, 4)))
    assert result.grad_by_use["0.weight"][0] is net[0].weight.grad
    assert result.grad_by_use["6.bias"][0] is net[6].bias.grad


def test_tied_uses_and_grad_live_in_separate_memory():
    """Each use of the tied weight has its own memory, apart from .grad, so none aliases."""
    net = tied_net()
    result = run(net, make_input((2, 4)))
    first, second = result.grad_by_use["2.weight"]
    pointers = {first.data_ptr(), second.data_ptr(), net[2].weight.grad.data_ptr()}
    assert len(pointers) == 3
    torch.testing.assert_close(first + second, net[2].weight.grad)


def test_each_names_lists_are_made_only_when_read(monkeypatch):
    """run() makes no per-use list; reading a tied name makes its lists once, then keeps them."""
    calls = []
    real = explorer.engine.uses._Split._make
    monkeypatch.setattr(
        explorer.engine.uses._Split, "_make", lambda self: calls.append(1) or real(self)
    )
    result = run(tied_net(), make_input((2, 4)))
    assert calls == []
    assert len(result.grad_by_use["2.weight"]) == 2
    assert len(result.use_labels["2.weight"]) == 2 and len(result.grad_by_use["4.weight"]) == 2
    assert calls == [1]


class ThreeCalls(nn.Module):
    """One Linear called three times, and its weight used once more outside its forward."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(6, 6)

    def forward(self, x):
        x = self.layer(torch.tanh(self.layer(torch.tanh(self.layer(x)))))
        return torch.nn.functional.linear(x, self.layer.weight)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def run_beside_plain(make, shape: tuple[int, ...], device: str = "cpu"):
    """``make()`` seeded, run through ``run``, and a deep copy through plain backward on the
    same input: ``(net, twin, result)``, so ``net``'s grads can be compared with ``twin``'s."""
    torch.manual_seed(0)
    net = make().to(device)
    twin = copy.deepcopy(net)
    x = make_input(shape, device=device)
    result = run(net, x)
    twin(x).sum().backward()
    return net, twin, result


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("make", [tied_net, ThreeCalls], ids=["two calls", "three calls + outside"])
def test_grad_is_plain_backwards_grad_bit_for_bit(make, device):
    """.grad after run equals plain backward's, bit for bit, however many uses are summed."""
    net, twin, _ = run_beside_plain(make, (3, 4 if make is tied_net else 6), device)
    for (name, param), expected in zip(net.named_parameters(), twin.parameters(), strict=True):
        assert torch.equal(param.grad, expected.grad), name


def test_uses_and_the_outside_remainder_are_each_calls_own_gradient():
    """Each use is what that call alone sends back; the remainder is the outside use's."""
    torch.manual_seed(0)
    net = ThreeCalls()
    x = make_input((3, 6))
    result = run(net, x)
    labels = result.use_labels["layer.weight"]
    assert labels == [*(f"call {n} of module layer" for n in (1, 2, 3)), OUTSIDE_LABEL]
    weight = net.layer.weight.detach()
    leaves = [weight.clone().requires_grad_() for _ in range(4)]
    bias = net.layer.bias.detach()
    h = F.linear(x, leaves[0], bias)
    h = F.linear(torch.tanh(F.linear(torch.tanh(h), leaves[1], bias)), leaves[2], bias)
    F.linear(h, leaves[3]).sum().backward()
    for got, leaf in zip(result.grad_by_use["layer.weight"], leaves, strict=True):
        assert torch.equal(got, leaf.grad)


def test_the_recorder_leaves_each_modules_own_forward_as_it_was():
    """After a run no module keeps the recorder's wrapper; a forward set on an instance stays."""
    net = tied_net()
    own = net[0].forward
    net[0].forward = lambda x: own(x) * 2
    mine = net[0].forward
    doubled = run(net, make_input((2, 4))).output
    assert net[0].__dict__["forward"] is mine
    assert all("forward" not in m.__dict__ for m in list(net.modules())[1:] if m is not net[0])
    del net[0].forward
    assert not torch.equal(run(net, make_input((2, 4))).output, doubled)


def test_grad_by_use_lists_are_the_callers_to_change():
    """Each read returns a new list, so appending to one does not change the result."""
    result = run(tied_net(), make_input((2, 4)))
    result.grad_by_use["2.weight"].append(torch.zeros(1))
    assert len(result.grad_by_use["2.weight"]) == 2


def test_capture_of_a_single_use_weight_needs_no_copy_of_its_gradient(capped_runs):
    """With room for 1.5 copies of a 64 MiB gradient, run succeeds (a clone would need 2)."""
    assert capped_runs[0] == "ok"


def test_capture_of_a_tied_weight_needs_one_buffer_beyond_plain_backward(capped_runs):
    """A tied 64 MiB weight: plain backward's 224 MiB plus one 64 MiB buffer is enough."""
    assert capped_runs[2] == "ok"


def test_a_second_run_frees_the_first_runs_gradient_before_its_backward(capped_runs):
    """Run again while .grad holds the last run's 64 MiB: half a gradient of room is enough,
    as for ``zero_grad(set_to_none=True)`` then backward (holding both would need 64 MiB)."""
    assert capped_runs[1] == "ok"


def test_uses_sum_error_is_the_largest_difference_from_grad():
    """Two uses summing to .grad except one element off by 0.5 give 0.5."""
    a, b = torch.ones(3, 3), torch.full((3, 3), 2.0)
    grad = a + b
    grad[1, 2] += 0.5
    assert uses_sum_error([a, b], grad) == pytest.approx(0.5)


def test_use_scale_is_the_shared_robust_range_of_the_use_heatmaps():
    """use_scale equals the ±range uses_figure draws, below a single huge outlier."""
    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(16, 8, generator=generator), torch.randn(16, 8, generator=generator)
    second[3, 3] = 1e3
    total = first + second
    scale = use_scale([first, second], total)
    assert scale == uses_figure([first, second], total).layout.coloraxis.cmax
    assert scale < 10


def test_recorder_leaves_no_view_in_the_module():
    """After a run every module holds its real Parameters again."""
    net = tied_net()
    run(net, make_input((2, 4)))
    assert all(isinstance(p, nn.Parameter) for m in net.modules() for p in m._parameters.values())


class TwiceLSTM(nn.Module):
    """One LSTM run over the sequence twice: its weights are cached in ``_flat_weights``."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 4, batch_first=True)

    def forward(self, x):
        out, _ = self.lstm(x)
        again, _ = self.lstm(out[..., :3])
        return again


def test_an_lstm_called_twice_has_two_uses_and_plain_backwards_grad():
    """An RNN's cached weights follow the swap: two uses, summing to plain .grad exactly."""
    net, twin, result = run_beside_plain(TwiceLSTM, (2, 5, 3))
    assert result.use_labels["lstm.weight_hh_l0"] == [
        "call 1 of module lstm",
        "call 2 of module lstm",
    ]
    for param, expected in zip(net.parameters(), twin.parameters(), strict=True):
        assert torch.equal(param.grad, expected.grad)
    assert all(w is p for w, p in zip(net.lstm._flat_weights, net.lstm.parameters(), strict=True))


class Regularized(nn.Module):
    """A layer, plus a penalty its parent computes from ``self.layer.parameters()``."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 3)

    def forward(self, x):
        penalty = sum(p.pow(2).sum() for p in self.layer.parameters())
        return self.layer(x) + penalty


def test_parameters_read_by_iteration_outside_the_call_are_the_remainder():
    """Reading parameters through ``.parameters()`` outside the module's call is the
    'outside' use, with exactly that use's gradient."""
    torch.manual_seed(0)
    net = Regularized()
    x = make_input((2, 4))
    result = run(net, x)
    assert result.use_labels["layer.weight"] == ["call 1 of module layer", OUTSIDE_LABEL]
    inside, outside = result.grad_by_use["layer.weight"]
    weight = net.layer.weight.detach()
    assert torch.equal(outside, (2 * weight) * 6)  # d/dw of sum(w²), once per output element
    assert torch.equal(inside, torch.ones(2, 3).T @ x)
    assert torch.equal(net.layer.weight.grad, outside + inside)


class Recursive(nn.Module):
    """A layer applied ``depth`` times through the module's own recursive call."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 3)

    def forward(self, x, depth: int = 3):
        x = torch.tanh(self.layer(x))
        return self.forward_again(x, depth - 1) if depth > 1 else x

    def forward_again(self, x, depth):
        return self(x, depth)


def test_a_module_calling_itself_gets_a_use_per_call():
    """Nested calls of one module each get their own use, and the sum is plain .grad."""
    net, twin, result = run_beside_plain(Recursive, (2, 3))
    assert len(result.use_labels["layer.weight"]) == 3
    assert torch.equal(net.layer.weight.grad, twin.layer.weight.grad)
    torch.testing.assert_close(sum(result.grad_by_use["layer.weight"]), net.layer.weight.grad)


class FirstWithoutGrad(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 3)

    def forward(self, x):
        with torch.no_grad():
            x = self.layer(x)
        return self.layer(x)


def test_a_call_without_grad_is_counted_but_is_not_a_use():
    """A no-grad call takes no gradient: the one use is the second call, and it is .grad."""
    net = FirstWithoutGrad()
    result = run(net, make_input((2, 3)))
    assert result.use_labels["layer.weight"] == ["call 2 of module layer"]
    assert result.grad_by_use["layer.weight"][0] is net.layer.weight.grad


class KeptReference(nn.Module):
    """Uses its layer's weight once in the layer's call and once through a plain list."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(3, 3)
        self.kept = [self.layer.weight]  # a Python reference, outside the module tree

    def forward(self, x):
        return self.layer(x) + F.linear(x, self.kept[0])


def test_a_reference_kept_outside_the_module_tree_counts_toward_the_first_use():
    """As documented: such a use is not seen on its own; .grad is still plain backward's."""
    net, twin, result = run_beside_plain(KeptReference, (2, 3))
    assert result.use_labels["layer.weight"] == ["call 1 of module layer"]
    assert torch.equal(net.layer.weight.grad, twin.layer.weight.grad)
