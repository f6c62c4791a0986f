"""The chapter in the TensorFlow (Keras) edition, step by step.

Code and printed outputs are the MXNet/PyTorch/TensorFlow edition's TensorFlow cells. Its net
is ``Flatten(), Dense(4, relu), Dense(1)`` on a (2, 4) input (the *Keras's Dense(4) net*
preset), opened with Keras's default initialization: glorot_uniform kernels, zero biases.
The seed lost every ``<tf.Variable …>`` repr; the app writes them as TensorFlow prints them.
"""

from __future__ import annotations

import torch

from explorer.editions import chapter_facts as f
from explorer.editions.chapter_step import Setup, Step, edit
from explorer.editions.listings import keras_first, keras_summary
from explorer.editions.places import Framework, lengths, listing
from explorer.session.experiment import Ran
from explorer.spec.presets import KERAS_DEFAULT

__all__ = ["STEPS"]

F = Framework
_KERAS = tuple(KERAS_DEFAULT)
_NORMAL = (*_KERAS, {"init": "normal", "target": "0.weight", "mean": 0.0, "std": 0.01})
_CONSTANT = (*_KERAS, {"init": "constant", "target": "0.weight", "value": 1.0})
_XAVIER_42 = (
    *_KERAS,
    {"init": "xavier_uniform", "target": "0.weight"},
    {"init": "constant", "target": "2.weight", "value": 42.0},
)
_MY_INIT = (*_KERAS, {"init": "d2l_mixture", "target": "0.weight"})
_TIED_NET = {
    "type": "sequential",
    "children": [
        {"type": "linear", "out_features": 4, "name": "shared"},
        {"type": "relu"},
        {"type": "shared", "ref": "shared"},
        {"type": "relu"},
        {"type": "linear", "out_features": 1},
    ],
}
_STRIPPED = "the seed lost TensorFlow's <tf.Variable …> reprs; the app writes them out"
_GRAD_TEXT = (
    "the gradients of the second hidden layer and the third hidden layer are added together "
    "during backpropagation"
)


def _variable(layer: str, local: str, t: torch.Tensor) -> str:
    """A weight as TensorFlow prints a variable: a kernel is PyTorch's weight transposed."""
    values = t.detach().cpu().T if local == "kernel" else t.detach().cpu()
    shape = ", ".join(map(str, values.shape)) + ("," if values.dim() == 1 else "")
    head = f"<tf.Variable '{layer}/{local}:0' shape=({shape}) dtype=float32, numpy="
    return f"{head}\n{f.np_text(values)}>"


def _weights(s, path: str, layer: str) -> str:
    m = f.module_at(s, path)
    return f"[{_variable(layer, 'kernel', m.weight)},\n {_variable(layer, 'bias', m.bias)}]"


def _summary(s) -> str:
    return (
        keras_summary(
            s.module, tuple(s.experiment.input_shape), keras_first({"dense": 2, "sequential": 1})
        )
        or ""
    )


def _get_weights(s) -> str:
    arrays = []
    for name, p in s.module.named_parameters():
        arrays.append(f.np_text(p.detach().T if name.endswith("weight") else p.detach()))
    return "[" + ", ".join(arrays) + "]"


_MLP = Setup("keras_mlp")

STEPS: tuple[Step, ...] = (
    Step(
        "net",
        "The MLP (Flatten, Dense(4), Dense(1)) and a forward pass",
        "import tensorflow as tf\n\n"
        "net = tf.keras.models.Sequential([\n"
        "    tf.keras.layers.Flatten(),\n"
        "    tf.keras.layers.Dense(4, activation=tf.nn.relu),\n"
        "    tf.keras.layers.Dense(1),\n"
        "])\n\n"
        "X = tf.random.uniform((2, 4))\n"
        "net(X)",
        "MX-PT-TF",
        (),
        _MLP,
        lambda s: f"tf.Tensor(\n{f.np_text(s.last_run.output)}, shape=(2, 1), dtype=float32)",
        (f.within("0.weight", (6 / 8) ** 0.5), f.is_zero("0.bias"), f.count(25)),
        "Keras's net has 4 hidden units: the tree shows (4, 4) and (1, 4) weights, zero "
        "biases, and glorot_uniform's bounds on the histogram.",
        note="the output was lost from the seed",
    ),
    Step(
        "weights",
        "One layer's parameters: net.layers[2].weights",
        "print(net.layers[2].weights)",
        "MX-PT-TF",
        ("[, ]",),
        Setup("keras_mlp", select="2/weight"),
        lambda s: _weights(s, "2", "dense_1"),
        (f.shapes("2", [("weight", (1, 4)), ("bias", (1,))]),),
        "Flatten() is layer 0, so the second Dense is net.layers[2]; its kernel is (4, 1): "
        "PyTorch's (1, 4) weight transposed (the editions box).",
        note=_STRIPPED,
    ),
    Step(
        "bias",
        "A parameter's values: tf.convert_to_tensor",
        "print(type(net.layers[2].weights[1]))\n"
        "print(net.layers[2].weights[1])\n"
        "print(tf.convert_to_tensor(net.layers[2].weights[1]))",
        "MX-PT-TF",
        ("tf.Tensor([0.], shape=(1,), dtype=float32)",),
        Setup("keras_mlp", select="2/bias"),
        lambda s: f"tf.Tensor({f.tensor_at(s, '2.bias').numpy()}, shape=(1,), dtype=float32)",
        (
            f.text_agrees(
                lambda s: (
                    f"tf.Tensor({f.tensor_at(s, '2.bias').numpy()}, shape=(1,), dtype=float32)"
                ),
                "tf.Tensor([0.], shape=(1,), dtype=float32)",
                "the bias",
            ),
        ),
        "2.bias is 0: Keras's default bias.",
        note="the first two prints were lost from the seed",
    ),
    Step(
        "get_weights",
        "All parameters at once: get_weights()",
        "print(net.layers[1].weights)\nprint(net.get_weights())",
        "MX-PT-TF",
        (
            "array([0., 0., 0., 0.], dtype=float32), array([[ 0.6852075 ], [-0.81062627], "
            "[ 0.14000857], [ 0.5764358 ]], dtype=float32), array([0.], dtype=float32)]",
        ),
        Setup("keras_mlp", tab="All parameters"),
        _get_weights,
        (f.listed(F.KERAS, "[(4, 4), (4,), (4, 1), (1,)]"), f.is_zero("0.bias")),
        "The All parameters tab, Keras: the shapes (4, 4), (4,), (4, 1), (1,): kernels are "
        "(in, out).",
    ),
    Step(
        "by_position",
        "A parameter by position: get_weights()[1]",
        "net.get_weights()[1]",
        "MX-PT-TF",
        ("array([0., 0., 0., 0.], dtype=float32)",),
        Setup("keras_mlp", select="0/bias"),
        lambda s: f.np_text(f.tensor_at(s, "0.bias")),
        (
            f.text_agrees(
                lambda s: f.np_text(f.tensor_at(s, "0.bias")),
                "array([0., 0., 0., 0.], dtype=float32)",
                "get_weights()[1]",
            ),
        ),
        "The editions box of 0.bias: net.get_weights()[1].",
    ),
    Step(
        "rgnet",
        "Nested blocks: rgnet and its summary()",
        "def block1(name):\n"
        "    return tf.keras.Sequential([\n"
        "        tf.keras.layers.Flatten(),\n"
        "        tf.keras.layers.Dense(4, activation=tf.nn.relu)],\n"
        "        name=name)\n\n"
        "def block2():\n"
        "    net = tf.keras.Sequential()\n"
        "    for i in range(4):\n"
        "        # Nested here\n"
        "        net.add(block1(name=f'block-{i}'))\n"
        "    return net\n\n"
        "rgnet = tf.keras.Sequential()\n"
        "rgnet.add(block2())\n"
        "rgnet.add(tf.keras.layers.Dense(1))\n"
        "rgnet(X)\n\n"
        "# next cell\n"
        "print(rgnet.summary())",
        "MX-PT-TF",
        (
            'Model: "sequential_1"',
            "sequential_2 (Sequential) (2, 4) 80",
            "dense_6 (Dense) (2, 1) 5",
            "Total params: 85 Trainable params: 85 Non-trainable params: 0",
        ),
        Setup("keras_rgnet", tab="All parameters"),
        _summary,
        (
            lambda s: ("Total params: 85", "Total params: 85" in _summary(s)),
            lambda s: (
                "sequential_2 (Sequential) … 80",
                "sequential_2 (Sequential)" in _summary(s),
            ),
            lambda s: ("dense_6 (Dense) … 5", "dense_6 (Dense)" in _summary(s)),
        ),
        "The All parameters tab, Keras: summary() with 80 + 5 = 85 parameters. The names go "
        "on from net's: sequential_1, dense_6.",
    ),
    Step(
        "nested",
        "A nested parameter",
        "rgnet.layers[0].layers[1].layers[1].weights[1]",
        "MX-PT-TF",
        (),
        Setup("keras_rgnet", select="0.block-1.0/bias"),
        lambda s: _variable("dense_3", "bias", f.tensor_at(s, "0.block-1.0.bias")),
        (
            lambda s: (
                "rgnet.layers[0].layers[1].layers[1].weights[1]",
                f.where(s, "0.block-1.0.bias", F.KERAS).access[0]
                == "rgnet.layers[0].layers[1].layers[1].weights[1]",
            ),
        ),
        "Every block starts with its Flatten, so block-1's Dense is .layers[1] inside it.",
        note="the output was lost from the seed",
    ),
    Step(
        "normal",
        "Built-in initialization: random_normal_initializer",
        "net = tf.keras.models.Sequential([\n"
        "    tf.keras.layers.Flatten(),\n"
        "    tf.keras.layers.Dense(\n"
        "        4, activation=tf.nn.relu,\n"
        "        kernel_initializer=tf.random_normal_initializer(mean=0, stddev=0.01),\n"
        "        bias_initializer=tf.zeros_initializer()),\n"
        "    tf.keras.layers.Dense(1)])\n\n"
        "net(X)\n"
        "net.weights[0], net.weights[1]",
        "MX-PT-TF",
        ("(, )",),
        Setup("keras_mlp", rules=_NORMAL, select="0/weight"),
        lambda s: _weights(s, "0", "dense"),
        (f.within("0.weight", 0.06), f.is_zero("0.bias")),
        "Only the first Dense draws N(0, 0.01²); the second keeps glorot_uniform.",
        note=_STRIPPED,
    ),
    Step(
        "constant",
        "A constant: Constant(1)",
        "net = tf.keras.models.Sequential([\n"
        "    tf.keras.layers.Flatten(),\n"
        "    tf.keras.layers.Dense(\n"
        "        4, activation=tf.nn.relu,\n"
        "        kernel_initializer=tf.keras.initializers.Constant(1),\n"
        "        bias_initializer=tf.zeros_initializer()),\n"
        "    tf.keras.layers.Dense(1),\n"
        "])\n\n"
        "net(X)\n"
        "net.weights[0], net.weights[1]",
        "MX-PT-TF",
        ("(, )",),
        Setup("keras_mlp", rules=_CONSTANT, select="0/weight"),
        lambda s: _weights(s, "0", "dense"),
        (f.all_equal("0.weight", 1.0), f.is_zero("0.bias")),
        "Every weight of the first Dense is 1.",
        note=_STRIPPED,
    ),
    Step(
        "xavier_42",
        "Different initializers for different layers",
        "net = tf.keras.models.Sequential([\n"
        "    tf.keras.layers.Flatten(),\n"
        "    tf.keras.layers.Dense(\n"
        "        4,\n"
        "        activation=tf.nn.relu,\n"
        "        kernel_initializer=tf.keras.initializers.GlorotUniform()),\n"
        "    tf.keras.layers.Dense(\n"
        "        1, kernel_initializer=tf.keras.initializers.Constant(42)),\n"
        "])\n\n"
        "net(X)\n"
        "print(net.layers[1].weights[0])\n"
        "print(net.layers[2].weights[0])",
        "MX-PT-TF",
        (),
        Setup("keras_mlp", rules=_XAVIER_42, select="2/weight"),
        lambda s: (
            f"{_variable('dense', 'kernel', f.tensor_at(s, '0.weight'))}\n"
            f"{_variable('dense_1', 'kernel', f.tensor_at(s, '2.weight'))}"
        ),
        (f.within("0.weight", (6 / 8) ** 0.5), f.all_equal("2.weight", 42.0)),
        "The second Dense's kernel is all 42.",
        note="the output was lost from the seed",
    ),
    Step(
        "my_init",
        "A custom initializer: MyInit",
        "class MyInit(tf.keras.initializers.Initializer):\n"
        "    def __call__(self, shape, dtype=None):\n"
        "        data=tf.random.uniform(shape, -10, 10, dtype=dtype)\n"
        "        factor=(tf.abs(data) >= 5)\n"
        "        factor=tf.cast(factor, tf.float32)\n"
        "        return data * factor\n\n"
        "net = tf.keras.models.Sequential([\n"
        "    tf.keras.layers.Flatten(),\n"
        "    tf.keras.layers.Dense(\n"
        "        4,\n"
        "        activation=tf.nn.relu,\n"
        "        kernel_initializer=MyInit()),\n"
        "    tf.keras.layers.Dense(1),\n"
        "])\n\n"
        "net(X)\n"
        "print(net.layers[1].weights[0])",
        "MX-PT-TF",
        (),
        Setup("keras_mlp", rules=_MY_INIT, select="0/weight"),
        lambda s: _variable("dense", "kernel", f.tensor_at(s, "0.weight")),
        (f.kept_or_zero("0.weight", 5, 10), f.is_zero("0.bias")),
        "About half the first kernel is 0, the rest in [5, 10] or [-10, -5].",
        note="the output was lost from the seed",
    ),
    Step(
        "edit",
        "Setting values directly: assign",
        "net.layers[1].weights[0][:].assign(net.layers[1].weights[0] + 1)\n"
        "net.layers[1].weights[0][0, 0].assign(42)\n"
        "net.layers[1].weights[0]",
        "MX-PT-TF",
        (),
        Setup(
            "keras_mlp",
            rules=_MY_INIT,
            ops=(edit("0.weight", "add", 1.0), edit("0.weight", "set", 42.0, (0, 0))),
            select="0/weight",
        ),
        lambda s: _variable("dense", "kernel", f.tensor_at(s, "0.weight")),
        (f.edited("0.weight", (0, 0), 42.0),),
        "Cell (0, 0) is 42; under the form, the same edit as Keras's .assign on the "
        "transposed kernel.",
        note="the output was lost from the seed",
    ),
    Step(
        "tied",
        "Tied parameters: Keras drops the duplicate layer",
        "# tf.keras behaves a bit differently. It removes the duplicate layer\n"
        "# automatically\n"
        "shared = tf.keras.layers.Dense(4, activation=tf.nn.relu)\n"
        "net = tf.keras.models.Sequential([\n"
        "    tf.keras.layers.Flatten(),\n"
        "    shared,\n"
        "    shared,\n"
        "    tf.keras.layers.Dense(1),\n"
        "])\n\n"
        "net(X)\n"
        "# Check whether the parameters are different\n"
        "print(len(net.layers) == 3)",
        "MX-PT-TF",
        ("True",),
        Setup("keras_mlp", spec=_TIED_NET, select="0/weight"),
        lambda s: str(lengths(s.module)[F.KERAS] == 3),
        (
            f.text_agrees(
                lambda s: str(lengths(s.module)[F.KERAS] == 3), "True", "len(net.layers) == 3"
            ),
            f.tied_names(["0.weight", "2.weight"]),
        ),
        "The editions box: len(net.layers) = 3 in Keras; PyTorch keeps both names in "
        "state_dict() (and indexing), but parameters() lists the tensor once.",
    ),
    Step(
        "tied_grad",
        "Tied gradients are added together",
        "with tf.GradientTape() as tape:\n"
        "    loss = tf.reduce_sum(net(X))\n"
        "tape.gradient(loss, net.trainable_variables)",
        "newest",
        (_GRAD_TEXT,),
        Setup("keras_mlp", spec=_TIED_NET, ran=Ran.BACKWARD, select="0/weight"),
        lambda s: f.np_text(s.module.get_parameter("0.weight").grad.T),
        (f.uses_add_up("0.weight", 2),),
        "The gradient of the shared kernel: use 1, use 2, and their sum, which is the one "
        "gradient tape.gradient returns for the one variable.",
        note="the chapter says it in words",
        quoted=False,
    ),
    Step(
        "ex_fixed",
        "Exercise 1: the parameters of FancyMLP (FixedHiddenMLP)",
        "net = FixedHiddenMLP()\nnet(X)\nnet.dense.weights",
        "MX-PT-TF",
        ("Use the ``FancyMLP`` model defined in",),
        Setup("fancy_mlp", rules=_KERAS, select="linear/weight"),
        lambda s: _weights(s, "linear", "dense"),
        (f.count(420), f.is_zero("linear.bias")),
        "TensorFlow's FixedHiddenMLP calls its dense layer once (after the constant "
        "rand_weight); PyTorch's calls linear twice, so here linear.weight has two uses.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_train",
        "Exercise 3: train an MLP with a shared layer",
        "# Construct an MLP containing a shared parameter layer and train it.",
        "MX-PT-TF",
        ("Construct an MLP containing a shared parameter layer and train it.",),
        Setup("keras_mlp", spec=_TIED_NET, tab="Train"),
        lambda s: listing(s.module, F.KERAS),
        (f.trained(),),
        "The Train tab: press Train; each use's gradient norm against their sum.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_why",
        "Exercise 4: why is sharing parameters a good idea?",
        "# Why is sharing parameters a good idea?",
        "MX-PT-TF",
        ("Why is sharing parameters a good idea?",),
        Setup("keras_mlp", spec=_TIED_NET, ran=Ran.BACKWARD, tab="Code"),
        lambda s: str(s.tree.counts()),
        (f.count(25, 45),),
        "The Code tab's *Why share parameters?*: 25 stored elements instead of 45.",
        exercise=True,
        quoted=False,
    ),
)
