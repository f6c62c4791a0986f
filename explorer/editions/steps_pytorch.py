"""The chapter in the PyTorch edition, step by step (the guided chapter's default edition).

Code is the newest edition's where it has the cell (lazy layers); the printed outputs are
the MXNet/PyTorch/TensorFlow edition's, whose PyTorch net was ``nn.Linear(4, 8)``: the same
shapes after the first forward.
"""

from __future__ import annotations

from explorer.editions import chapter_facts as f
from explorer.editions.chapter_step import Setup, Step, edit
from explorer.editions.places import Framework
from explorer.editions.snippets import MY_INIT
from explorer.init.initializers import RECIPES
from explorer.session.experiment import Ran
from explorer.view.reduce import tensor_preview

__all__ = ["STEPS"]

F = Framework
_FROM_MPT = "printed by the MXNet/PyTorch/TensorFlow edition (its net: nn.Linear(4, 8))"
_TIED_GRAD = (
    "the gradients of the second hidden layer and the third hidden layer are added together "
    "during backpropagation"
)


def _rules(key: str) -> tuple:
    return tuple(RECIPES[key].rules)


def _sd(path: str):
    return lambda s: str(f.module_at(s, path).state_dict())


def _first_row(s) -> str:
    return f"({f.tensor_at(s, '0.weight')[0]!s}, {f.tensor_at(s, '0.bias')[0]!s})"


def _bias_text(s) -> str:
    p = s.module.get_parameter("2.bias")
    return f"{type(p)}\n{p}\n{p.data}"


def _named(s) -> str:
    return " ".join(str((n, p.shape)) for n, p in s.module.named_parameters())


def _uses(s) -> str:
    run = s.last_run
    grads = run.grad_by_use.get("2.weight", []) if run else []
    lines = [f"# use {i + 1}: ‖grad‖ = {float(g.norm()):.4g}" for i, g in enumerate(grads)]
    total = s.module.get_parameter("2.weight").grad
    lines.append(f"net[2].weight.grad  # the sum, ‖grad‖ = {float(total.norm()):.4g}")
    lines.append(tensor_preview(total))
    return "\n".join(lines)


_MLP = Setup("mlp", ran=Ran.FORWARD)

STEPS: tuple[Step, ...] = (
    Step(
        "mlp",
        "The MLP and its first forward pass",
        "net = nn.Sequential(nn.LazyLinear(8),\n"
        "                    nn.ReLU(),\n"
        "                    nn.LazyLinear(1))\n\n"
        "X = torch.rand(size=(2, 4))\n"
        "net(X).shape",
        "MX-PT-TF",
        ("tensor([[0.0731], [0.1613]], grad_fn=)",),
        _MLP,
        lambda s: str(s.last_run.output),
        (
            f.shapes("0", [("weight", (8, 4)), ("bias", (8,))]),
            lambda s: ("the output is (2, 1)", tuple(s.last_run.output.shape) == (2, 1)),
        ),
        "The tree: the lazy layers had `?` shapes until this forward pass; now 0.weight is "
        "(8, 4) and 2.weight (1, 8). The output tensor is in the sidebar.",
        note=_FROM_MPT + "; the values are another seed's",
        code_seed="newest",
    ),
    Step(
        "state_dict",
        "One layer's parameters: net[2].state_dict()",
        "net[2].state_dict()",
        "MX-PT-TF",
        (
            "OrderedDict([('weight', tensor([[-0.2665, 0.1665, -0.2725, -0.1111, 0.1236, "
            "-0.2030, 0.3430, 0.3423]])), ('bias', tensor([0.0211]))])",
        ),
        Setup("mlp", select="2"),
        _sd("2"),
        (
            f.shapes("2", [("weight", (1, 8)), ("bias", (1,))]),
            f.within("2.weight", 8**-0.5),
            f.not_zero("2.bias"),
        ),
        "Block 2 is selected: its parameter table and, below it, net[2].state_dict() with "
        "its values. PyTorch's default bias is not zero, as the chapter's 0.0211.",
        note=_FROM_MPT,
    ),
    Step(
        "bias",
        "A parameter and its values: type(net[2].bias), net[2].bias.data",
        "type(net[2].bias), net[2].bias.data",
        "MX-PT-TF",
        ("Parameter containing: tensor([0.0211], requires_grad=True) tensor([0.0211])",),
        Setup("mlp", select="2/bias"),
        _bias_text,
        (lambda s: ("class Parameter", type(s.module[2].bias).__name__ == "Parameter"),),
        "The detail panel: class Parameter, shape (1,), the value, and the access expression "
        "net[2].bias with a copy button.",
        note=_FROM_MPT + " with print(type(…)), print(net[2].bias), print(net[2].bias.data); "
        "the <class …> line was lost in extraction",
        code_seed="newest",
    ),
    Step(
        "grad",
        "No gradient before backward",
        "net[2].weight.grad == None",
        "MX-PT-TF",
        ("True",),
        Setup("mlp", select="2/weight"),
        lambda s: str(s.module[2].weight.grad is None),
        (f.grad_is_none("2.weight"),),
        "The box *No gradient yet*: .grad is None until a backward pass, and what each "
        "other edition shows instead (MXNet and DJL: zeros; JAX: no gradients kept).",
        note=_FROM_MPT,
    ),
    Step(
        "all",
        "All parameters at once: named_parameters()",
        "[(name, param.shape) for name, param in net.named_parameters()]",
        "MX-PT-TF",
        (
            "('0.weight', torch.Size([8, 4])) ('0.bias', torch.Size([8])) "
            "('2.weight', torch.Size([1, 8])) ('2.bias', torch.Size([1]))",
        ),
        Setup("mlp", tab="All parameters"),
        _named,
        (
            f.text_agrees(
                _named,
                "('0.weight', torch.Size([8, 4])) ('0.bias', torch.Size([8])) "
                "('2.weight', torch.Size([1, 8])) ('2.bias', torch.Size([1]))",
                "named_parameters()",
            ),
        ),
        "The All parameters tab: the same list, then how the other editions list them "
        "(collect_params(), getParameters(), get_weights(), tree_map).",
        note=_FROM_MPT + " with print(*[…])",
    ),
    Step(
        "by_name",
        "A parameter by its name: state_dict()['2.bias']",
        "net.state_dict()['2.bias'].data",
        "MX-PT-TF",
        ("tensor([0.0211])",),
        Setup("mlp", select="2/bias"),
        lambda s: str(s.module.state_dict()["2.bias"].data),
        (f.shapes("2", [("weight", (1, 8)), ("bias", (1,))]),),
        "The detail panel names the state_dict key 2.bias; the editions box lists every way "
        "to reach it (collect_params()['dense1_bias'], get_weights()[3], …).",
        note=_FROM_MPT,
    ),
    Step(
        "rgnet",
        "Nested blocks: rgnet",
        "def block1():\n"
        "    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(),\n"
        "                         nn.Linear(8, 4), nn.ReLU())\n\n"
        "def block2():\n"
        "    net = nn.Sequential()\n"
        "    for i in range(4):\n"
        "        # Nested here\n"
        "        net.add_module(f'block {i}', block1())\n"
        "    return net\n\n"
        "rgnet = nn.Sequential(block2(), nn.Linear(4, 1))\n"
        "rgnet(X)\n\n"
        "# next cell\n"
        "print(rgnet)",
        "MX-PT-TF",
        (
            "Sequential( (0): Sequential( (block 0): Sequential( (0): Linear(in_features=4, "
            "out_features=8, bias=True) (1): ReLU() (2): Linear(in_features=8, out_features=4, "
            "bias=True) (3): ReLU() )",
            "(1): Linear(in_features=4, out_features=1, bias=True) )",
        ),
        Setup("rgnet"),
        lambda s: str(s.module),
        (
            lambda s: (
                "print(rgnet): the same text as printed",
                f.squash(str(s.module)).startswith(
                    f.squash(
                        "Sequential( (0): Sequential( (block 0): Sequential( (0): "
                        "Linear(in_features=4, out_features=8, bias=True)"
                    )
                ),
            ),
            f.count(309),
        ),
        "The tree: block 0 … block 3 inside 0, each with its own parameters; open them. "
        "print(rgnet) is in the root block's panel.",
        note="print(rgnet) printed by the MXNet/PyTorch/TensorFlow edition (the middle blocks "
        "are left out here)",
    ),
    Step(
        "nested",
        "A nested parameter: rgnet[0][1][0].bias",
        "rgnet[0][1][0].bias.data",
        "MX-PT-TF",
        ("tensor([-0.1396, 0.2621, -0.4331, -0.2222, -0.3755, -0.0421, -0.4612, -0.4498])",),
        Setup("rgnet", select="0.block 1.0/bias"),
        lambda s: str(s.module[0][1][0].bias.data),
        (f.shapes("0.block 1.0", [("weight", (8, 4)), ("bias", (8,))]),),
        "The access expression rgnet[0][1][0].bias, though its state_dict key is "
        "'0.block 1.0.bias': indexing counts children, the key uses their names.",
        note=_FROM_MPT,
    ),
    Step(
        "init_normal",
        "Built-in initialization: init_normal",
        "def init_normal(m):\n"
        "    if type(m) == nn.Linear:\n"
        "        nn.init.normal_(m.weight, mean=0, std=0.01)\n"
        "        nn.init.zeros_(m.bias)\n\n"
        "net.apply(init_normal)\n"
        "net[0].weight.data[0], net[0].bias.data[0]",
        "MX-PT-TF",
        ("(tensor([ 0.0007, 0.0208, 0.0103, -0.0094]), tensor(0.))",),
        Setup("mlp", rules=_rules("init_normal"), select="0/weight"),
        _first_row,
        (f.within("0.weight", 0.06), f.is_zero("0.bias"), f.is_zero("2.bias")),
        "The histogram of 0.weight with the N(0, 0.01²) density drawn over it; the detail "
        "panel says which rule set it (Initialize tab: the rules).",
        note=_FROM_MPT + "; the newest edition has no section on initialization",
    ),
    Step(
        "init_constant",
        "A constant: init_constant",
        "def init_constant(m):\n"
        "    if type(m) == nn.Linear:\n"
        "        nn.init.constant_(m.weight, 1)\n"
        "        nn.init.zeros_(m.bias)\n\n"
        "net.apply(init_constant)\n"
        "net[0].weight.data[0], net[0].bias.data[0]",
        "MX-PT-TF",
        ("(tensor([1., 1., 1., 1.]), tensor(0.))",),
        Setup("mlp", rules=_rules("init_constant"), select="0/weight"),
        _first_row,
        (f.text_agrees(_first_row, "(tensor([1., 1., 1., 1.]), tensor(0.))", "the first row"),),
        "Every weight is 1: the heatmap is one colour, the histogram one bar.",
    ),
    Step(
        "xavier_42",
        "Different initializers for different layers",
        "def xavier(m):\n"
        "    if type(m) == nn.Linear:\n"
        "        nn.init.xavier_uniform_(m.weight)\n\n"
        "def init_42(m):\n"
        "    if type(m) == nn.Linear:\n"
        "        nn.init.constant_(m.weight, 42)\n\n"
        "net[0].apply(xavier)\n"
        "net[2].apply(init_42)\n"
        "print(net[0].weight.data[0])\n"
        "print(net[2].weight.data)",
        "MX-PT-TF",
        (
            "tensor([-0.2886, -0.6428, -0.2568, 0.0093])",
            "tensor([[42., 42., 42., 42., 42., 42., 42., 42.]])",
        ),
        Setup("mlp", rules=_rules("xavier_42"), select="0/weight"),
        lambda s: f"{f.tensor_at(s, '0.weight')[0]}\n{f.tensor_at(s, '2.weight')}",
        (f.within("0.weight", (6 / 12) ** 0.5), f.all_equal("2.weight", 42.0)),
        "0.weight's histogram with Xavier's bounds ±√(6/(4+8)) = ±0.707; click 2.weight: all 42.",
        note=_FROM_MPT,
    ),
    Step(
        "my_init",
        "A custom initializer: my_init",
        MY_INIT[F.PYTORCH] + "\nnet[0].weight[:2]",
        "MX-PT-TF",
        (
            "Init weight torch.Size([8, 4]) Init weight torch.Size([1, 8])",
            "tensor([[ 0.0000, -7.4797, -8.2019, 9.8475], [ 5.0957, 7.4569, -0.0000, "
            "-0.0000]], grad_fn=)",
        ),
        Setup("mlp", rules=_rules("my_init"), select="0/weight"),
        lambda s: f"{f.prints_of(s, F.PYTORCH)}\n{s.module[0].weight[:2]}",
        (
            f.text_agrees(
                lambda s: f.prints_of(s, F.PYTORCH),
                "Init weight torch.Size([8, 4]) Init weight torch.Size([1, 8])",
                "what my_init prints",
            ),
            f.kept_or_zero("0.weight", 5, 10),
        ),
        "About half the values are 0 and the rest in [5, 10] or [-10, -5]: the histogram "
        "against the chapter's mixture. The Initialize tab shows the rule's code: these very "
        "lines.",
    ),
    Step(
        "edit",
        "Setting values directly",
        "net[0].weight.data[:] += 1\nnet[0].weight.data[0, 0] = 42\nnet[0].weight.data[0]",
        "MX-PT-TF",
        ("tensor([42.0000, -6.4797, -7.2019, 10.8475])",),
        Setup(
            "mlp",
            rules=_rules("my_init"),
            ops=(edit("0.weight", "add", 1.0), edit("0.weight", "set", 42.0, (0, 0))),
            select="0/weight",
        ),
        lambda s: str(f.tensor_at(s, "0.weight")[0]),
        (f.edited("0.weight", (0, 0), 42.0),),
        "Cell (0, 0) is 42 and boxed on the heatmap; the other values moved up by 1. "
        "Below the form: the last edit in every edition.",
        note="after my_init, as in the chapter",
    ),
    Step(
        "tied",
        "Tied parameters: one layer used twice",
        "# We need to give the shared layer a name so that we can refer to its\n"
        "# parameters\n"
        "shared = nn.LazyLinear(8)\n"
        "net = nn.Sequential(nn.LazyLinear(8), nn.ReLU(),\n"
        "                    shared, nn.ReLU(),\n"
        "                    shared, nn.ReLU(),\n"
        "                    nn.LazyLinear(1))\n\n"
        "net(X)\n"
        "# Check whether the parameters are the same\n"
        "print(net[2].weight.data[0] == net[4].weight.data[0])\n"
        "net[2].weight.data[0, 0] = 100\n"
        "# Make sure that they are actually the same object rather than just having the\n"
        "# same value\n"
        "print(net[2].weight.data[0] == net[4].weight.data[0])",
        "MX-PT-TF",
        (
            "tensor([True, True, True, True, True, True, True, True]) "
            "tensor([True, True, True, True, True, True, True, True])",
        ),
        Setup("tied", ops=(edit("2.weight", "set", 100.0, (0, 0)),), select="4/weight"),
        lambda s: str(s.module[2].weight.data[0] == s.module[4].weight.data[0]),
        (
            f.tied_names(["2.weight", "4.weight"]),
            f.edited("4.weight", (0, 0), 100.0),
            f.count(121, 193),
        ),
        "4.weight is selected: cell (0, 0) is 100, though the edit was made on 2.weight. "
        "Both carry the same *tied* badge; 121 elements in parameters(), 193 in state_dict().",
        note="the printed output is the MXNet/PyTorch/TensorFlow edition's",
        code_seed="newest",
    ),
    Step(
        "tied_grad",
        "Tied gradients are added together",
        "loss = net(X).sum()\nloss.backward()\nnet[2].weight.grad",
        "newest",
        (_TIED_GRAD,),
        Setup("tied", ran=Ran.BACKWARD, select="2/weight"),
        _uses,
        (f.uses_add_up("2.weight", 2), f.tied_names(["2.weight", "4.weight"])),
        "The gradient of 2.weight: use 1, use 2 and their sum in one picture on one colour "
        "scale, and where each edition keeps the sum.",
        note="the chapter says it in words",
        quoted=False,
    ),
    Step(
        "ex_nest",
        "Exercise 1: the parameters of NestMLP",
        "class NestMLP(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.net = nn.Sequential(nn.LazyLinear(64), nn.ReLU(),\n"
        "                                 nn.LazyLinear(32), nn.ReLU())\n"
        "        self.linear = nn.LazyLinear(16)\n\n"
        "    def forward(self, X):\n"
        "        return self.linear(self.net(X))\n\n"
        "net = NestMLP()\nnet(torch.rand(2, 20))\n"
        "net.net[0].weight.shape, net.linear.bias.shape",
        "newest",
        ("Use the ``NestMLP`` model defined in",),
        Setup("nest_mlp"),
        lambda s: (
            f"{(s.module.net[0].weight.shape, s.module.linear.bias.shape)}\n"
            + _named(s).replace(") (", ")\n(")
        ),
        (
            f.not_subscriptable(),
            f.count(3952),
            lambda s: (
                "reached as net.net[0].weight",
                s.tree.access_path("net.0.weight") == "net.net[0].weight",
            ),
        ),
        "NestMLP is not a Sequential: its children are named net and linear, so the tree "
        "reaches net.net[0].weight and net.linear.weight (net[0] raises TypeError).",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_fixed",
        "Exercise 1 (older editions): FancyMLP, now FixedHiddenMLP",
        "net = FixedHiddenMLP()\nnet(torch.rand(2, 20))\n"
        "[(name, param.shape) for name, param in net.named_parameters()]",
        "MX-PT-TF",
        ("Use the ``FancyMLP`` model defined in",),
        Setup("fancy_mlp", select="linear/weight"),
        _named,
        (
            f.shapes("", [("linear.weight", (20, 20)), ("linear.bias", (20,))]),
            f.count(420),
            f.not_subscriptable(),
        ),
        "Two entries and 420 elements: rand_weight is a constant tensor, not a parameter. "
        "After Forward + backward, linear.weight shows two uses and their sum.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_train",
        "Exercise 2: train an MLP with a shared layer",
        "# Construct an MLP containing a shared parameter layer and train it.\n"
        "opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)\n"
        "for step in range(200):\n"
        "    opt.zero_grad()\n"
        "    loss = F.mse_loss(net(X), y)\n"
        "    loss.backward()\n"
        "    opt.step()",
        "newest",
        ("Construct an MLP containing a shared parameter layer and train it.",),
        Setup("tied", tab="Train"),
        lambda s: (
            "\n".join(f"{op['op']}: {op.get('steps', '')} steps" for op in s.experiment.ops)
            or "# not trained yet: press Train in the Train tab"
        ),
        (f.tied_names(["2.weight", "4.weight"]), f.trained()),
        "The Train tab: press Train. The loss falls; each use's gradient norm against their "
        "sum; every tensor's value norm, gradient norm and update ratio.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_why",
        "Exercise 3: why is sharing parameters a good idea?",
        "sum(p.numel() for p in net.parameters()), \\\n"
        "    sum(p.numel() for p in net.state_dict().values())",
        "newest",
        ("Why is sharing parameters a good idea?",),
        Setup("tied", ran=Ran.BACKWARD, tab="Code"),
        lambda s: str(
            (
                sum(p.numel() for p in s.module.parameters()),
                sum(p.numel() for p in s.module.state_dict().values()),
            )
        ),
        (f.count(121, 193), f.uses_add_up("2.weight", 2)),
        "The Code tab's *Why share parameters?*: fewer numbers to store and train (tying saves "
        "72 of 193), and every use trains the one tensor.",
        exercise=True,
        quoted=False,
    ),
)
