"""run(): one forward/backward pass, gradients split by module call; devices; inputs."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from explorer.core.devices import DeviceOption, available_devices, resolve_device
from explorer.core.errors import DeviceError, ExplorerError, SpecError
from explorer.engine.run import make_input, run
from explorer.engine.uses import OUTSIDE_LABEL
from tests.models import TiedLM, chapter_mlp, lazy_mlp, tied_net, untied_copy


class OutsideUse(nn.Module):
    """Uses the embedding's weight directly with F.linear, outside the embedding's forward."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4)

    def forward(self, tokens):
        return F.linear(self.emb(tokens), self.emb.weight)


class FailsAfterTiedLayer(nn.Module):
    """Runs a tied layer twice, then raises."""

    def __init__(self, error: Exception):
        super().__init__()
        self.shared = nn.Linear(4, 4)
        self.error = error

    def forward(self, x):
        self.shared(self.shared(x))
        raise self.error


class _OutOfMemoryInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


class OutOfMemoryInBackward(nn.Module):
    """Passes x through; its backward raises CUDA's OutOfMemoryError (after later layers')."""

    def forward(self, x):
        return _OutOfMemoryInBackward.apply(x)


def hook_counts(module: nn.Module) -> list[tuple[int, int]]:
    return [(len(m._forward_pre_hooks), len(m._forward_hooks)) for m in module.modules()]


def test_tied_layer_has_one_use_per_call_under_both_names():
    """Both names of the tied weight list two uses, the same tensors for each name."""
    net = tied_net()
    result = run(net, make_input((2, 4)))
    assert len(result.grad_by_use["2.weight"]) == 2
    uses, aliases = result.grad_by_use["2.weight"], result.grad_by_use["4.weight"]
    assert all(torch.equal(mine, alias) for mine, alias in zip(uses, aliases, strict=True))
    assert result.use_labels["2.weight"] == [
        "call 1 of module 2 (also at 4)",
        "call 2 of module 2 (also at 4)",
    ]


def test_tied_uses_sum_to_the_parameter_grad():
    """The two uses of the tied weight and bias add up to param.grad."""
    net = tied_net()
    result = run(net, make_input((2, 4)))
    for name, param in (("2.weight", net[2].weight), ("2.bias", net[2].bias)):
        torch.testing.assert_close(sum(result.grad_by_use[name]), param.grad)


def test_each_tied_use_equals_the_gradient_of_an_untied_copy():
    """Use i of the tied layer equals the gradient of copy i in an untied twin net."""
    net = tied_net()
    twin = untied_copy(net)
    x = make_input((2, 4))
    result = run(net, x)
    twin(x).sum().backward()
    for name in ("weight", "bias"):
        first, second = result.grad_by_use[f"2.{name}"]
        torch.testing.assert_close(first, getattr(twin[2], name).grad)
        torch.testing.assert_close(second, getattr(twin[4], name).grad)


def test_untied_layer_has_exactly_one_use_equal_to_its_grad():
    """An untied layer has one use, and it is exactly param.grad."""
    net = tied_net()
    result = run(net, make_input((2, 4)))
    assert result.use_labels["0.weight"] == ["call 1 of module 0"]
    assert torch.equal(result.grad_by_use["0.weight"][0], net[0].weight.grad)


def test_names_are_all_parameter_names_and_relu_has_none():
    """Keys are named_parameters(remove_duplicate=False); no ReLU appears."""
    net = tied_net()
    result = run(net, make_input((2, 4)))
    names = [name for name, _ in net.named_parameters(remove_duplicate=False)]
    assert list(result.grad_by_use) == names
    assert list(result.use_labels) == names
    assert not [name for name in names if name.split(".")[0] in {"1", "3", "5"}]


def test_grads_match_a_plain_forward_backward():
    """param.grad after run equals torch.autograd.grad of a plain forward pass."""
    net = tied_net()
    twin = copy.deepcopy(net)
    x = make_input((2, 4))
    result = run(net, x)
    expected = torch.autograd.grad(twin(x).sum(), list(twin.parameters()))
    for param, grad in zip(net.parameters(), expected, strict=True):
        torch.testing.assert_close(param.grad, grad)
    torch.testing.assert_close(result.output, twin(x).detach())


def test_attribute_tied_parameter_has_a_use_per_module():
    """A Parameter shared by two modules has one use in each, summing to its grad."""
    model = TiedLM()
    result = run(model, make_input((2, 5), "tokens", high=10))
    assert result.use_labels["emb.weight"] == ["call 1 of module emb", "call 1 of module head"]
    assert result.use_labels["head.weight"] == result.use_labels["emb.weight"]
    torch.testing.assert_close(sum(result.grad_by_use["emb.weight"]), model.emb.weight.grad)


def test_use_outside_the_modules_forward_is_the_remainder():
    """A weight used via F.linear outside its module gets an 'outside' entry of the rest."""
    model = OutsideUse()
    tokens = make_input((2, 5), "tokens", high=10)
    result = run(model, tokens)
    weight = model.emb.weight.detach().requires_grad_()
    inside = torch.autograd.grad(
        F.linear(F.embedding(tokens, weight), weight.detach()).sum(), weight
    )[0]
    assert result.use_labels["emb.weight"] == ["call 1 of module emb", OUTSIDE_LABEL]
    torch.testing.assert_close(result.grad_by_use["emb.weight"][0], inside)
    torch.testing.assert_close(sum(result.grad_by_use["emb.weight"]), model.emb.weight.grad)


def test_parameter_without_gradient_has_no_uses():
    """A frozen parameter lists no uses."""
    net = chapter_mlp()
    net[0].bias.requires_grad_(False)
    result = run(net, make_input((2, 4)))
    assert result.grad_by_use["0.bias"] == []
    assert result.use_labels["0.bias"] == []


def test_lazy_net_is_materialized_by_the_run():
    """LazyLinear parameters are uninitialized before and shaped after, with one use each."""
    net = lazy_mlp()
    assert all(isinstance(p, nn.parameter.UninitializedParameter) for p in net.parameters())
    result = run(net, make_input((2, 4)))
    assert [tuple(p.shape) for p in net.parameters()] == [(8, 4), (8,), (1, 8), (1,)]
    assert {name: len(uses) for name, uses in result.grad_by_use.items()} == {
        "0.weight": 1,
        "0.bias": 1,
        "2.weight": 1,
        "2.bias": 1,
    }
    assert torch.equal(result.grad_by_use["0.weight"][0], net[0].weight.grad)


def test_hooks_are_removed_after_a_run():
    """Only hooks that were there before the run remain afterwards."""
    net = tied_net()
    net[0].register_forward_hook(lambda *args: None)
    before = hook_counts(net)
    run(net, make_input((2, 4)))
    assert hook_counts(net) == before


@pytest.mark.parametrize("training", [True, False])
def test_training_mode_is_restored(training):
    """Every module's training flag is as it was, in train and in eval mode."""
    net = tied_net().train(training)
    net[0].train(not training)
    before = [m.training for m in net.modules()]
    run(net, make_input((2, 4)))
    assert [m.training for m in net.modules()] == before


def test_parameters_are_the_real_objects_after_a_run():
    """Each module's _parameters holds the original Parameter objects afterwards."""
    net = tied_net()
    before = [dict(m._parameters) for m in net.modules()]
    run(net, make_input((2, 4)))
    after = [dict(m._parameters) for m in net.modules()]
    assert all(a[k] is b[k] for a, b in zip(after, before, strict=True) for k in b)


def test_forward_that_raises_is_reraised_after_cleanup():
    """A forward that raises after a tied layer ran leaves no hooks, real params, same mode."""
    model = FailsAfterTiedLayer(ValueError("boom")).eval()
    params = dict(model.shared._parameters)
    before = hook_counts(model)
    with pytest.raises(ValueError, match="boom"):
        run(model, make_input((2, 4)))
    assert all(model.shared._parameters[k] is v for k, v in params.items())
    assert isinstance(model.shared.weight, nn.Parameter)
    assert hook_counts(model) == before
    assert not model.training


def test_shape_mismatch_becomes_an_explorer_error_naming_the_input_shape():
    """torch's shape error is shown with the input shape that was used."""
    with pytest.raises(ExplorerError, match=r"\(2, 5\).*mat1 and mat2 shapes cannot be multiplied"):
        run(chapter_mlp(), make_input((2, 5)))


def test_oversized_input_is_refused_before_running():
    """An input over 50,000,000 elements raises SpecError (a meta tensor allocates nothing)."""
    with pytest.raises(SpecError, match="50,000,000"):
        run(chapter_mlp(), torch.empty(50_000_001, device="meta"))


def test_input_tensor_is_not_changed():
    """The caller's input keeps its values, device and requires_grad."""
    x = make_input((2, 4))
    kept = x.clone()
    run(chapter_mlp(), x, device="cpu")
    assert torch.equal(x, kept) and not x.requires_grad


def test_sum_loss_equals_torch():
    """loss="sum" is output.sum()."""
    net, x = chapter_mlp(), make_input((2, 4))
    assert run(net, x).loss == net(x).sum().item()


def test_mse_loss_equals_torch_with_default_and_given_target():
    """loss="mse" is F.mse_loss against zeros, or against the given target."""
    net, x = chapter_mlp(), make_input((2, 4))
    target = torch.tensor([[0.5], [-1.0]])
    assert run(net, x, loss="mse").loss == F.mse_loss(net(x), torch.zeros(2, 1)).item()
    assert run(net, x, loss="mse", target=target).loss == F.mse_loss(net(x), target).item()


def test_cross_entropy_default_target_is_seeded_class_ids():
    """loss="cross_entropy" on (N, C) uses class ids from a generator seeded 0."""
    net, x = nn.Linear(4, 3), make_input((5, 4))
    ids = torch.randint(0, 3, (5,), generator=torch.Generator().manual_seed(0))
    assert run(net, x, loss="cross_entropy").loss == F.cross_entropy(net(x), ids).item()


def test_cross_entropy_flattens_sequence_logits():
    """(N, T, C) logits are flattened to (N*T, C) against the given ids."""
    net, x = nn.Linear(4, 3), make_input((2, 5, 4))
    ids = torch.tensor([[0, 1, 2, 0, 1], [2, 2, 1, 0, 0]])
    expected = F.cross_entropy(net(x).reshape(-1, 3), ids.reshape(-1)).item()
    assert run(net, x, loss="cross_entropy", target=ids).loss == expected


def test_unknown_loss_is_a_spec_error_naming_the_choices():
    """An unknown loss name raises SpecError listing sum, mse, cross_entropy."""
    with pytest.raises(SpecError, match="sum, mse, cross_entropy, got 'l1'"):
        run(chapter_mlp(), make_input((2, 4)), loss="l1")


def test_output_shapes_of_the_chapter_mlp():
    """Each module path maps to its output shape; "" is the whole net."""
    result = run(chapter_mlp(), make_input((2, 4)))
    assert result.output_shapes == {"0": (2, 8), "1": (2, 8), "2": (2, 1), "": (2, 1)}


def test_output_shapes_without_the_probe_are_measured_when_first_read():
    """With ``probe=False`` the shapes come from a meta pass made on first read, the same."""
    net = chapter_mlp()
    result = run(net, make_input((2, 4)), probe=False)
    assert result.output_shapes == {"0": (2, 8), "1": (2, 8), "2": (2, 1), "": (2, 1)}
    assert result.output_shapes["2"] == (2, 1) and len(result.output_shapes) == 4


def test_result_records_device_dtype_and_time():
    """The result names the device and dtype, and a positive time."""
    result = run(chapter_mlp(), make_input((2, 4)), device="cpu")
    assert (result.device, result.dtype) == ("cpu", "float32")
    assert result.seconds > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_a_device_error():
    """Asking for CUDA where PyTorch sees none raises DeviceError, model untouched."""
    net = chapter_mlp()
    with pytest.raises(DeviceError, match="CUDA was requested but no CUDA device is visible"):
        run(net, make_input((2, 4)), device="cuda")
    assert net[0].weight.grad is None


def test_unknown_device_name_is_a_device_error():
    """'gpu' is not a device name: the message lists the ones that are."""
    with pytest.raises(DeviceError, match="unknown device 'gpu': use cpu, cuda, cuda:N or mps"):
        resolve_device("gpu")


def test_resolve_device_cpu():
    """'cpu' and None resolve to the CPU."""
    assert resolve_device("cpu") == resolve_device(None) == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_matches_cpu_run():
    """A run on cuda gives the cpu run's loss and per-use gradients, and stays on cuda."""
    net, x = tied_net(), make_input((2, 4))
    on_gpu = copy.deepcopy(net)
    cpu, gpu = run(net, x), run(on_gpu, x, device="cuda")
    assert gpu.device.startswith("cuda") and on_gpu[0].weight.is_cuda and not x.is_cuda
    assert gpu.loss == pytest.approx(cpu.loss, rel=1e-5)
    for name, uses in cpu.grad_by_use.items():
        for mine, theirs in zip(uses, gpu.grad_by_use[name], strict=True):
            torch.testing.assert_close(theirs.cpu(), mine, rtol=1e-4, atol=1e-5)


def test_out_of_memory_becomes_a_device_error_after_cleanup():
    """An OOM mid-backward raises DeviceError; hooks gone, grads None, model still on cpu."""
    net = nn.Sequential(nn.Linear(4, 8), OutOfMemoryInBackward(), nn.Linear(8, 1))
    before = hook_counts(net)
    with pytest.raises(DeviceError, match="out of memory on cpu .* the model was left on cpu"):
        run(net, make_input((2, 4)))
    assert hook_counts(net) == before
    assert all(p.grad is None for p in net.parameters())
    assert all(p.device.type == "cpu" for p in net.parameters())


def test_a_failing_forward_leaves_the_last_runs_gradients_in_place():
    """A second run on an input of the wrong shape raises; every .grad is the first run's."""
    net = tied_net()
    run(net, make_input((2, 4)))
    before = {name: p.grad for name, p in net.named_parameters()}
    with pytest.raises(ExplorerError, match=r"\(2, 5\)"):
        run(net, make_input((2, 5)))
    assert all(p.grad is before[name] for name, p in net.named_parameters())


def test_a_failing_backward_after_a_good_run_leaves_no_gradient():
    """An OOM in the second run's backward: no .grad is the first run's or a partial sum."""
    net = nn.Sequential(nn.Linear(4, 8), OutOfMemoryInBackward(), nn.Linear(8, 1))
    net[0].weight.grad, net[2].weight.grad = torch.ones(8, 4), torch.ones(1, 8)
    with pytest.raises(DeviceError, match="out of memory"):
        run(net, make_input((2, 4)))
    assert all(p.grad is None for p in net.parameters())


def test_without_a_device_the_module_is_not_moved_or_walked(monkeypatch):
    """device=None keeps the module where it is: run never calls its .to (a walk over every
    tensor, 2 ms a run on a GPT-2-sized tree); naming a device does."""
    net = tied_net()
    moves = []
    real_to = net.to
    monkeypatch.setattr(net, "to", lambda *a, **k: moves.append(a) or real_to(*a, **k))
    run(net, make_input((2, 4)))
    assert moves == []
    run(net, make_input((2, 4)), device="cpu")
    assert moves == [(torch.device("cpu"),)]


def test_available_devices_lists_cpu_and_cuda():
    """cpu is always available; without CUDA a disabled 'cuda' entry says why."""
    options = available_devices()
    assert options[0] == DeviceOption("cpu", True, "")
    cuda = [o for o in options if o.name.startswith("cuda")]
    if torch.cuda.is_available():
        assert all(o.available for o in cuda) and len(cuda) == torch.cuda.device_count()
    else:
        assert [(o.name, o.available) for o in cuda] == [("cuda", False)]
        assert "no CUDA device visible to PyTorch" in cuda[0].reason


def test_make_input_uniform_shape_dtype_and_seed():
    """Uniform inputs have the asked shape and dtype and repeat for the same seed."""
    x = make_input((2, 4), dtype=torch.float64, seed=3)
    assert x.shape == (2, 4) and x.dtype == torch.float64
    assert torch.equal(x, make_input((2, 4), dtype=torch.float64, seed=3))
    assert not torch.equal(x, make_input((2, 4), dtype=torch.float64, seed=4))
    assert torch.equal(
        x, torch.rand(2, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    )


def test_make_input_tokens_are_int64_in_range():
    """Token inputs are int64 ids in [0, high)."""
    tokens = make_input((4, 50), "tokens", high=7)
    assert tokens.dtype == torch.int64
    assert tokens.min().item() >= 0 and tokens.max().item() == 6


def test_make_input_rejects_unknown_kind_and_missing_high():
    """An unknown kind or tokens without high raise SpecError."""
    with pytest.raises(SpecError, match="uniform, tokens"):
        make_input((2, 4), "normal")
    with pytest.raises(SpecError, match="high"):
        make_input((2, 4), "tokens")


def test_the_activation_probe_is_measured_once_per_model_shape_and_input(monkeypatch):
    """A second run of the same model on the same input reuses the probe's answer; a new
    input shape, a replaced weight or train/eval mode measure again, and agree with a
    fresh measurement."""
    import importlib

    probe = importlib.import_module("explorer.engine.run")
    measured = []
    measure = probe._measure_activations
    monkeypatch.setattr(
        probe, "_measure_activations", lambda *a: measured.append(a[1].shape) or measure(*a)
    )
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = make_input((3, 4))
    first = probe.activation_bytes(net, x)
    assert probe.activation_bytes(net, x) == first and len(measured) == 1
    run(net, x)
    assert len(measured) == 1  # run's own check found it too
    wider = make_input((30, 4))
    assert probe.activation_bytes(net, wider) > first and len(measured) == 2
    net[2].weight = nn.Parameter(torch.zeros(5, 8))
    net[2].bias = nn.Parameter(torch.zeros(5))
    changed = probe.activation_bytes(net, wider)
    assert len(measured) == 3 and changed == measure(net, wider, "sum", True)[0]
    net.eval()
    probe.activation_bytes(net, wider)
    assert len(measured) == 4
