"""The chapter in the JAX (Flax) edition, step by step.

Only the newest edition has a JAX tab, and it prints nothing: the app's outputs are what Flax
gives for the same net (jax 0.10, flax 0.12: ``net.init`` returns a plain dict, with keys in
sorted order, so ``bias`` before ``kernel``). The edition has no sections on initialization
or on changing values. Its models open with Flax's own default: ``lecun_normal`` kernels and
zero biases.
"""

from __future__ import annotations

from explorer.editions import chapter_facts as f
from explorer.editions.chapter_step import Setup, Step
from explorer.editions.places import Framework, lengths, listing
from explorer.session.experiment import Ran
from explorer.spec.presets import FLAX_DEFAULT

__all__ = ["STEPS"]

F = Framework
_FLAX = tuple(FLAX_DEFAULT)
_TREE = (
    "{'params': {'layers_0': {'bias': (8,), 'kernel': (4, 8)}, "
    "'layers_2': {'bias': (1,), 'kernel': (8, 1)}}}"
)
_NOTHING = "the JAX edition prints nothing; the app's output is what Flax gives for this net"


def _array(t) -> str:
    """A value as JAX prints an array: ``Array([0.], dtype=float32)``."""
    return "Array(" + f.np_text(t).removeprefix("array(")


def _layer(s, path: str) -> str:
    m = f.module_at(s, path)
    return f"{{'bias': {_array(m.bias)}, 'kernel': {_array(m.weight.T)}}}"


_MLP = Setup("mlp", rules=_FLAX)

STEPS: tuple[Step, ...] = (
    Step(
        "net",
        "The MLP: net.init gives the parameters",
        "net = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(1)])\n\n"
        "X = jax.random.uniform(d2l.get_key(), (2, 4))\n"
        "params = net.init(d2l.get_key(), X)\n"
        "net.apply(params, X).shape",
        "newest",
        (),
        _MLP,
        lambda s: str(tuple(s.last_run.output.shape)),
        (
            lambda s: ("the output is (2, 1)", tuple(s.last_run.output.shape) == (2, 1)),
            f.is_zero("0.bias"),
        ),
        "Flax's layers are lazy as PyTorch's LazyLinear: net.init runs X through them. The "
        "tree shows the shapes it gave; biases are 0 (Flax's bias_init).",
        note=_NOTHING,
    ),
    Step(
        "layer",
        "One layer's parameters: params['params']['layers_2']",
        "params['params']['layers_2']",
        "newest",
        (),
        Setup("mlp", rules=_FLAX, select="2/weight"),
        lambda s: _layer(s, "2"),
        (f.shapes("2", [("weight", (1, 8)), ("bias", (1,))]),),
        "nn.relu takes a position (layers_1), so the second Dense is layers_2; its kernel is "
        "(8, 1), PyTorch's weight transposed (the editions box).",
        note=_NOTHING,
    ),
    Step(
        "bias",
        "A parameter's values, and no gradients kept",
        "bias = params['params']['layers_2']['bias']\ntype(bias), bias",
        "newest",
        ("Unlike the other frameworks, JAX does not keep a track of the gradients",),
        Setup("mlp", rules=_FLAX, select="2/bias"),
        lambda s: f"(jaxlib.xla_extension.ArrayImpl, {_array(f.tensor_at(s, '2.bias'))})",
        (f.is_zero("2.bias"), f.grad_is_none("2.weight")),
        "The box *No gradient yet*: JAX returns gradients from jax.grad(loss)(params), they "
        "are not stored with the parameters.",
        note=_NOTHING,
    ),
    Step(
        "tree_map",
        "All parameters at once: tree_map",
        "jax.tree_util.tree_map(lambda x: x.shape, params)",
        "newest",
        (),
        Setup("mlp", rules=_FLAX, tab="All parameters"),
        lambda s: listing(s.module, F.FLAX),
        (f.text_agrees(lambda s: listing(s.module, F.FLAX), _TREE, "tree_map"),),
        "The All parameters tab, Flax: layers_0 and layers_2 only (the ReLUs hold nothing), "
        "keys sorted as JAX sorts a dict.",
        note=_NOTHING,
    ),
    Step(
        "tied",
        "Tied parameters: a layer used twice is stored once",
        "# We need to give the shared layer a name so that we can refer to its\n"
        "# parameters\n"
        "shared = nn.Dense(8)\n"
        "net = nn.Sequential([nn.Dense(8), nn.relu,\n"
        "                     shared, nn.relu,\n"
        "                     shared, nn.relu,\n"
        "                     nn.Dense(1)])\n\n"
        "params = net.init(jax.random.PRNGKey(d2l.get_seed()), X)\n\n"
        "# Check whether the parameters are different\n"
        "print(len(params['params']) == 3)",
        "newest",
        (),
        Setup("tied", rules=_FLAX, select="4/weight"),
        lambda s: str(lengths(s.module)[F.FLAX] == 3),
        (
            f.text_agrees(lambda s: str(lengths(s.module)[F.FLAX] == 3), "True", "len == 3"),
            f.tied_names(["2.weight", "4.weight"]),
        ),
        "4.weight is params['params']['layers_2']['kernel']: Flax stores the shared layer "
        "once, under its first position (the editions box).",
        note=_NOTHING,
    ),
    Step(
        "tied_grad",
        "Tied gradients are added together",
        "grads = jax.grad(lambda p: net.apply(p, X).sum())(params)\n"
        "grads['params']['layers_2']['kernel']",
        "newest",
        (),
        Setup("tied", rules=_FLAX, ran=Ran.BACKWARD, select="2/weight"),
        lambda s: _array(s.module.get_parameter("2.weight").grad.T),
        (f.uses_add_up("2.weight", 2),),
        "One entry for the layer stored once, holding the sum of its two uses: the picture "
        "of use 1, use 2 and their sum.",
        note="the JAX tab says nothing about tied gradients; the other tabs say they add up",
        quoted=False,
    ),
    Step(
        "ex_nest",
        "Exercise 1: the parameters of NestMLP",
        "net = NestMLP()\n"
        "params = net.init(d2l.get_key(), jnp.zeros((2, 20)))\n"
        "jax.tree_util.tree_map(lambda x: x.shape, params)",
        "newest",
        ("Use the ``NestMLP`` model defined in",),
        Setup("nest_mlp", rules=_FLAX, tab="All parameters"),
        lambda s: listing(s.module, F.FLAX),
        (f.listed(F.FLAX, "'dense': {'bias': (16,), 'kernel': (32, 16)}"), f.count(3952)),
        "The All parameters tab, Flax: net and dense, each a dict of its own.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_train",
        "Exercise 2: train an MLP with a shared layer",
        "# Construct an MLP containing a shared parameter layer and train it.",
        "newest",
        ("Construct an MLP containing a shared parameter layer and train it.",),
        Setup("tied", rules=_FLAX, tab="Train"),
        lambda s: listing(s.module, F.FLAX),
        (f.trained(),),
        "The Train tab: press Train; each use's gradient norm against their sum.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_why",
        "Exercise 3: why is sharing parameters a good idea?",
        "# Why is sharing parameters a good idea?",
        "newest",
        ("Why is sharing parameters a good idea?",),
        Setup("tied", rules=_FLAX, ran=Ran.BACKWARD, tab="Code"),
        lambda s: str(s.tree.counts()),
        (f.count(121, 193),),
        "The Code tab's *Why share parameters?*, with this model's numbers.",
        exercise=True,
        quoted=False,
    ),
)
