"""The chapter in the MXNet (Gluon) edition, step by step.

Code and printed outputs are the MXNet/PyTorch/TensorFlow edition's MXNet cells (a Dense(8)
net on a (2, 4) input); the regex filter and the exercise on deferred initialization come from
the oldest (Gluon) edition. Every model opens with MXNet's default initialization: weights
U(−0.07, 0.07), biases 0. MXNet's arrays print without a dtype, as float64 numpy arrays do.
"""

from __future__ import annotations

import torch

from explorer.editions import chapter_facts as f
from explorer.editions.chapter_step import Setup, Step, edit
from explorer.editions.listings import gluon_structure
from explorer.editions.places import Framework, listing
from explorer.editions.snippets import MY_INIT
from explorer.session.experiment import Ran
from explorer.spec.presets import MXNET_DEFAULT

__all__ = ["STEPS"]

F = Framework
_FIRST = {"dense": 2, "sequential": 1}  # rgnet is built after net
_MX = tuple(MXNET_DEFAULT)
_NORMAL = (*_MX, {"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.01})
_CONSTANT = (*_MX, {"init": "constant", "target": "*.weight", "value": 1.0})
_XAVIER_42 = (
    *_MX,
    {"init": "xavier_uniform", "target": "0.weight"},
    {"init": "constant", "target": "2.weight", "value": 42.0},
)
_MY_INIT = (*_MX, {"init": "d2l_mixture", "target": "*.weight"})
_TIED_NET = {
    "type": "sequential",
    "children": [
        {"type": "linear", "out_features": 8},
        {"type": "relu"},
        {"type": "linear", "out_features": 8, "name": "shared"},
        {"type": "relu"},
        {"type": "shared", "ref": "shared"},
        {"type": "relu"},
        {"type": "linear", "out_features": 10},
    ],
}
_GRAD_TEXT = (
    "the gradients of the second hidden layer and the third hidden layer are added together "
    "during backpropagation"
)


def _mx(t: torch.Tensor) -> str:
    """An array as MXNet's np prints it: no dtype (float64 numpy arrays print the same way)."""
    return repr(t.detach().double().cpu().numpy())


def _plain(t: torch.Tensor) -> str:
    """``print(array)``: numpy's str."""
    return str(t.detach().cpu().numpy())


def _params_all(s) -> str:
    return f"{f.mx_params(s, '0')}\n{listing(s.module, F.MXNET)}"


def _bias(s) -> str:
    return f"{f.mx_params(s, '2').splitlines()[2].strip()}\n{_plain(f.tensor_at(s, '2.bias'))}"


def _weights_only(s) -> str:
    lines = listing(s.module, F.MXNET).splitlines()
    return "\n".join(line for line in lines if "_bias" not in line)


_MLP = Setup("mlp", rules=_MX)

STEPS: tuple[Step, ...] = (
    Step(
        "net",
        "The MLP, its default initialization and a forward pass",
        "from mxnet import init, np, npx\n"
        "from mxnet.gluon import nn\n"
        "npx.set_np()\n\n"
        "net = nn.Sequential()\n"
        "net.add(nn.Dense(8, activation='relu'))\n"
        "net.add(nn.Dense(1))\n"
        "net.initialize()  # Use the default initialization method\n\n"
        "X = np.random.uniform(size=(2, 4))\n"
        "net(X)  # Forward computation",
        "MX-PT-TF",
        ("array([[0.0054572 ], [0.00488594]])",),
        _MLP,
        lambda s: _mx(s.last_run.output),
        (f.within("0.weight", 0.07), f.is_zero("0.bias"), f.is_zero("2.bias")),
        "The tree, shaped by the first forward pass; 0.weight's histogram against MXNet's "
        "default U(−0.07, 0.07), and zero biases (PyTorch's default bias is not zero).",
        note="the values are another framework's draws",
    ),
    Step(
        "params",
        "One layer's parameters: net[1].params",
        "print(net[1].params)",
        "MX-PT-TF",
        (
            "dense1_ ( Parameter dense1_weight (shape=(1, 8), dtype=float32) "
            "Parameter dense1_bias (shape=(1,), dtype=float32) )",
        ),
        Setup("mlp", rules=_MX, select="2/weight"),
        lambda s: f.mx_params(s, "2"),
        (
            f.text_agrees(
                lambda s: f.mx_params(s, "2"),
                "dense1_ ( Parameter dense1_weight (shape=(1, 8), dtype=float32) "
                "Parameter dense1_bias (shape=(1,), dtype=float32) )",
                "net[1].params",
            ),
        ),
        "The ReLU lives inside Gluon's Dense, so PyTorch's net[2] is Gluon's net[1], named "
        "dense1 by a global counter: the editions box of 2.weight.",
    ),
    Step(
        "bias",
        "A parameter and its values",
        "print(type(net[1].bias))\nprint(net[1].bias)\nprint(net[1].bias.data())",
        "MX-PT-TF",
        ("Parameter dense1_bias (shape=(1,), dtype=float32) [0.]",),
        Setup("mlp", rules=_MX, select="2/bias"),
        _bias,
        (
            f.text_agrees(
                _bias, "Parameter dense1_bias (shape=(1,), dtype=float32) [0.]", "the bias"
            ),
        ),
        "2.bias is 0: MXNet's default bias. The <class …> line was lost from the seed.",
    ),
    Step(
        "grad",
        "The gradient before backward: zeros",
        "net[1].weight.grad()",
        "MX-PT-TF",
        ("array([[0., 0., 0., 0., 0., 0., 0., 0.]])",),
        Setup("mlp", rules=_MX, select="2/weight"),
        lambda s: (
            "# PyTorch: net[2].weight.grad is None; MXNet keeps zeros of its shape:\n"
            + _mx(torch.zeros_like(f.tensor_at(s, "2.weight")))
        ),
        (f.grad_is_none("2.weight"),),
        "The box *No gradient yet*: MXNet's grad() is zeros with the weight's shape where "
        "PyTorch's .grad is None.",
    ),
    Step(
        "all",
        "All parameters at once: collect_params()",
        "print(net[0].collect_params())\nprint(net.collect_params())",
        "MX-PT-TF",
        (
            "dense0_ ( Parameter dense0_weight (shape=(8, 4), dtype=float32) Parameter "
            "dense0_bias (shape=(8,), dtype=float32) ) sequential0_ ( Parameter dense0_weight "
            "(shape=(8, 4), dtype=float32) Parameter dense0_bias (shape=(8,), dtype=float32) "
            "Parameter dense1_weight (shape=(1, 8), dtype=float32) Parameter dense1_bias "
            "(shape=(1,), dtype=float32) )",
        ),
        Setup("mlp", rules=_MX, tab="All parameters"),
        _params_all,
        (
            f.text_agrees(
                _params_all,
                "dense0_ ( Parameter dense0_weight (shape=(8, 4), dtype=float32) Parameter "
                "dense0_bias (shape=(8,), dtype=float32) ) sequential0_ ( Parameter "
                "dense0_weight (shape=(8, 4), dtype=float32) Parameter dense0_bias "
                "(shape=(8,), dtype=float32) Parameter dense1_weight (shape=(1, 8), "
                "dtype=float32) Parameter dense1_bias (shape=(1,), dtype=float32) )",
                "collect_params()",
            ),
        ),
        "The All parameters tab, MXNet: the sequential0_ prefix and the dense names.",
    ),
    Step(
        "by_name",
        "A parameter by its name: collect_params()['dense1_bias']",
        "net.collect_params()['dense1_bias'].data()",
        "MX-PT-TF",
        ("array([0.])",),
        Setup("mlp", rules=_MX, select="2/bias"),
        lambda s: _mx(f.tensor_at(s, "2.bias")),
        (f.text_agrees(lambda s: _mx(f.tensor_at(s, "2.bias")), "array([0.])", "dense1_bias"),),
        "The editions box lists every way to reach it: net[1].bias, "
        "net.collect_params()['dense1_bias'], and by name inside the layer, "
        "net[1].params['dense1_bias'].",
    ),
    Step(
        "regex",
        "Selecting by a regular expression (the oldest edition)",
        "print(net.collect_params('.*weight'))\nprint(net.collect_params('dense0.*'))",
        "Gluon",
        (
            "sequential0_ ( Parameter dense0_weight (shape=(256, 20), dtype=float32) "
            "Parameter dense1_weight (shape=(10, 256), dtype=float32)",
            "sequential0_ ( Parameter dense0_weight (shape=(256, 20), dtype=float32) "
            "Parameter dense0_bias (shape=(256,), dtype=float32) )",
        ),
        Setup("gluon_dense", tab="All parameters", filter=".*weight"),
        _weights_only,
        (
            f.listed(F.MXNET, "Parameter dense0_weight (shape=(256, 20), dtype=float32)"),
            f.listed(F.MXNET, "Parameter dense1_weight (shape=(10, 256), dtype=float32)"),
        ),
        "The sidebar's filter holds .*weight: only weights in the tree and tables. Type "
        "dense0.* (an MXNet name) to keep 0.weight and 0.bias, as collect_params('dense0.*').",
        note="the oldest edition's Dense(256) net; its code lines were lost from the seed",
        quoted=False,
    ),
    Step(
        "rgnet",
        "Nested blocks: rgnet",
        "def block1():\n"
        "    net = nn.Sequential()\n"
        "    net.add(nn.Dense(32, activation='relu'))\n"
        "    net.add(nn.Dense(16, activation='relu'))\n"
        "    return net\n\n"
        "def block2():\n"
        "    net = nn.Sequential()\n"
        "    for _ in range(4):\n"
        "        # Nested here\n"
        "        net.add(block1())\n"
        "    return net\n\n"
        "rgnet = nn.Sequential()\n"
        "rgnet.add(block2())\n"
        "rgnet.add(nn.Dense(10))\n"
        "rgnet.initialize()\n"
        "rgnet(X)\n\n"
        "# next cell\n"
        "print(rgnet.collect_params)\n"
        "print(rgnet.collect_params())",
        "MX-PT-TF",
        (
            "(1): Dense(16 -> 10, linear) )> sequential1_ ( Parameter dense2_weight "
            "(shape=(32, 4), dtype=float32)",
        ),
        Setup("gluon_rgnet", input_shape=(2, 4), tab="All parameters"),
        lambda s: f"{gluon_structure(s.module)}\n{listing(s.module, F.MXNET, 'rgnet', _FIRST)}",
        (
            f.listed(F.MXNET, "sequential1_ ( Parameter dense2_weight (shape=(32, 4)", _FIRST),
            f.listed(F.MXNET, "Parameter dense10_weight (shape=(10, 16), dtype=float32)", _FIRST),
            f.count(4074),
        ),
        "The All parameters tab, MXNet: the structure (Dense(4 -> 32, Activation(relu)) …) and "
        "the names, which go on from net's: sequential1_, dense2 … dense10.",
        note="the start of the structure (<bound method … Dense(4 ->) was lost from the seed",
    ),
    Step(
        "nested",
        "A nested parameter: rgnet[0][1][0].bias",
        "rgnet[0][1][0].bias.data()",
        "MX-PT-TF",
        (
            "array([0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., "
            "0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0.])",
        ),
        Setup("gluon_rgnet", input_shape=(2, 4), select="0.1.0/bias"),
        lambda s: _mx(f.tensor_at(s, "0.1.0.bias")),
        (f.is_zero("0.1.0.bias"), f.edition_name("0.1.0.bias", F.MXNET, "dense4_bias", _FIRST)),
        "rgnet[0][1][0].bias is dense4_bias, 32 zeros: the editions box gives its name.",
    ),
    Step(
        "normal",
        "Built-in initialization: Normal(sigma=0.01)",
        "# Here `force_reinit` ensures that parameters are freshly initialized even if\n"
        "# they were already initialized previously\n"
        "net.initialize(init=init.Normal(sigma=0.01), force_reinit=True)\n"
        "net[0].weight.data()[0]",
        "MX-PT-TF",
        ("array([-0.00324057, -0.00895028, -0.00698632, 0.01030831])",),
        Setup("mlp", rules=_NORMAL, select="0/weight"),
        lambda s: _mx(f.tensor_at(s, "0.weight")[0]),
        (f.within("0.weight", 0.06), f.is_zero("0.bias")),
        "The N(0, 0.01²) density over 0.weight's histogram; the biases stay 0 (a Dense's "
        "bias_initializer='zeros' takes precedence).",
    ),
    Step(
        "constant",
        "A constant: Constant(1)",
        "net.initialize(init=init.Constant(1), force_reinit=True)\nnet[0].weight.data()[0]",
        "MX-PT-TF",
        ("array([1., 1., 1., 1.])",),
        Setup("mlp", rules=_CONSTANT, select="0/weight"),
        lambda s: _mx(f.tensor_at(s, "0.weight")[0]),
        (
            f.text_agrees(
                lambda s: _mx(f.tensor_at(s, "0.weight")[0]), "array([1., 1., 1., 1.])", "row 0"
            ),
        ),
        "Every weight is 1.",
    ),
    Step(
        "xavier_42",
        "Different initializers for different layers",
        "net[0].weight.initialize(init=init.Xavier(), force_reinit=True)\n"
        "net[1].initialize(init=init.Constant(42), force_reinit=True)\n"
        "print(net[0].weight.data()[0])\n"
        "print(net[1].weight.data())",
        "MX-PT-TF",
        ("[-0.17594433 0.02314097 -0.1992535 0.09509248] [[42. 42. 42. 42. 42. 42. 42. 42.]]",),
        Setup("mlp", rules=_XAVIER_42, select="0/weight"),
        lambda s: f"{_plain(f.tensor_at(s, '0.weight')[0])}\n{_plain(f.tensor_at(s, '2.weight'))}",
        (f.within("0.weight", (6 / 12) ** 0.5), f.all_equal("2.weight", 42.0)),
        "MXNet's Xavier() is magnitude 3: PyTorch's xavier_uniform_, bounds ±0.707 on 0.weight; "
        "2.weight all 42.",
    ),
    Step(
        "my_init",
        "A custom initializer: MyInit",
        MY_INIT[F.MXNET] + "\nnet[0].weight.data()[:2]",
        "MX-PT-TF",
        (
            "Init dense0_weight (8, 4) Init dense1_weight (1, 8)",
            "array([[ 0. , -0. , -0. , 8.522827 ], [ 0. , -8.828651 , -0. , -5.6012006]])",
        ),
        Setup("mlp", rules=_MY_INIT, select="0/weight"),
        lambda s: f"{f.prints_of(s, F.MXNET)}\n{_mx(f.tensor_at(s, '0.weight')[:2])}",
        (
            f.text_agrees(
                lambda s: f.prints_of(s, F.MXNET),
                "Init dense0_weight (8, 4) Init dense1_weight (1, 8)",
                "what MyInit prints",
            ),
            f.kept_or_zero("0.weight", 5, 10),
            f.is_zero("0.bias"),
        ),
        "Weights only (_init_weight): the biases stay 0; half the weights are 0, the rest "
        "in [5, 10] or [-10, -5].",
    ),
    Step(
        "edit",
        "Setting values directly",
        "net[0].weight.data()[:] += 1\nnet[0].weight.data()[0, 0] = 42\nnet[0].weight.data()[0]",
        "MX-PT-TF",
        ("array([42. , 1. , 1. , 9.522827])",),
        Setup(
            "mlp",
            rules=_MY_INIT,
            ops=(edit("0.weight", "add", 1.0), edit("0.weight", "set", 42.0, (0, 0))),
            select="0/weight",
        ),
        lambda s: _mx(f.tensor_at(s, "0.weight")[0]),
        (f.edited("0.weight", (0, 0), 42.0),),
        "Cell (0, 0) is 42; the last edit in every edition is under the Edit values form, and "
        "MXNet's note on set_data inside an autograd scope.",
    ),
    Step(
        "tied",
        "Tied parameters: params=shared.params",
        "net = nn.Sequential()\n"
        "# We need to give the shared layer a name so that we can refer to its\n"
        "# parameters\n"
        "shared = nn.Dense(8, activation='relu')\n"
        "net.add(nn.Dense(8, activation='relu'),\n"
        "        shared,\n"
        "        nn.Dense(8, activation='relu', params=shared.params),\n"
        "        nn.Dense(10))\n"
        "net.initialize()\n\n"
        "X = np.random.uniform(size=(2, 20))\n\n"
        "net(X)\n"
        "# Check whether the parameters are the same\n"
        "print(net[1].weight.data()[0] == net[2].weight.data()[0])\n"
        "net[1].weight.data()[0, 0] = 100\n"
        "# Make sure that they are actually the same object rather than just having the\n"
        "# same value\n"
        "print(net[1].weight.data()[0] == net[2].weight.data()[0])",
        "MX-PT-TF",
        ("[ True True True True True True True True] [ True True True True True True True True]",),
        Setup(
            "tied",
            spec=_TIED_NET,
            rules=_MX,
            input_shape=(2, 20),
            ops=(edit("2.weight", "set", 100.0, (0, 0)),),
            select="4/weight",
        ),
        lambda s: _plain(f.tensor_at(s, "2.weight")[0] == f.tensor_at(s, "4.weight")[0]),
        (f.tied_names(["2.weight", "4.weight"]), f.edited("4.weight", (0, 0), 100.0)),
        "Gluon's net[1] and net[2] are PyTorch's 2 and 4 (ReLUs fused): one tensor, so the "
        "100 shows at 4.weight too.",
    ),
    Step(
        "tied_grad",
        "Tied gradients are added together",
        "with autograd.record():\n    loss = net(X).sum()\nloss.backward()\nnet[1].weight.grad()",
        "MX-PT-TF",
        (_GRAD_TEXT,),
        Setup(
            "tied",
            spec=_TIED_NET,
            rules=_MX,
            input_shape=(2, 20),
            ran=Ran.BACKWARD,
            select="2/weight",
        ),
        lambda s: (
            "# net[1].weight.grad() is net[2].weight.grad(): one buffer, the sum\n"
            + _mx(s.module.get_parameter("2.weight").grad[:2])
        ),
        (f.uses_add_up("2.weight", 2),),
        "The gradient of 2.weight: use 1, use 2 and their sum; the seed's shared.params.grad() "
        "does not exist, shared.weight.grad() is the sum.",
        note="the chapter says it in words",
        quoted=False,
    ),
    Step(
        "ex_fancy",
        "Exercise 1: the parameters of FancyMLP",
        "net = FixedHiddenMLP()\nnet.initialize()\nnet(X)\nprint(net.collect_params())",
        "MX-PT-TF",
        ("Use the ``FancyMLP`` model defined in",),
        Setup("fancy_mlp", rules=_MX, tab="All parameters"),
        lambda s: listing(s.module, F.MXNET),
        (
            f.listed(F.MXNET, "Parameter dense0_weight (shape=(20, 20), dtype=float32)"),
            f.count(420),
        ),
        "The All parameters tab, MXNet: rand_weight is a Constant made by params.get_constant, "
        "listed but never trained; net.dense.weight is used twice.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_deferred",
        "Exercise 3 (Gluon): the parameters before the first forward",
        "net.initialize()\nprint(net.collect_params())  # before net(x)",
        "Gluon",
        ("Try accessing the model parameters after net.initialize() and before net(x)",),
        Setup("mlp", rules=_MX, ran=Ran.NONE, select="0/weight"),
        lambda s: listing(s.module, F.MXNET),
        (lambda s: ("0.weight has no shape yet", s.tree.params["0.weight"].is_lazy),),
        "The tree shows ? shapes: Gluon's deferred initialization, as PyTorch's lazy layers. "
        "Press Forward: the root block's panel shows the shapes before and after.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_train",
        "Exercise 4: train an MLP with a shared layer",
        "# Construct an MLP containing a shared parameter layer and train it.",
        "MX-PT-TF",
        ("Construct an MLP containing a shared parameter layer and train it.",),
        Setup("tied", rules=_MX, tab="Train"),
        lambda s: (
            "\n".join(f"{op['op']}: {op.get('steps', '')} steps" for op in s.experiment.ops)
            or "# not trained yet: press Train in the Train tab"
        ),
        (f.tied_names(["2.weight", "4.weight"]), f.trained()),
        "The Train tab: each use's gradient norm against their sum while it trains.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_why",
        "Exercise 5: why is sharing parameters a good idea?",
        "# Why is sharing parameters a good idea?",
        "MX-PT-TF",
        ("Why is sharing parameters a good idea?",),
        Setup("tied", rules=_MX, ran=Ran.BACKWARD, tab="Code"),
        lambda s: str(s.tree.counts()),
        (f.count(121, 193),),
        "The Code tab's *Why share parameters?*, with this model's numbers.",
        exercise=True,
        quoted=False,
    ),
)
