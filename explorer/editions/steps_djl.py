"""The chapter in the DJL edition (Java, English), step by step.

Every DJL net in the seed calls ``setInitializer(new NormalInitializer(), Parameter.Type.WEIGHT)``
first (σ = 0.01) and leaves the biases to DJL's default, zeros; the steps set that up. DJL prints
an NDArray with its device (``gpu(0)`` in the seed; the app runs on the CPU).
"""

from __future__ import annotations

import torch

from explorer.editions import chapter_facts as f
from explorer.editions.chapter_step import Setup, Step, edit
from explorer.editions.listings import djl_structure
from explorer.editions.places import Framework, listing
from explorer.editions.snippets import DJL_GRADIENTS, MY_INIT
from explorer.init.initializers import DJL_XAVIER_GAIN, RECIPES
from explorer.session.experiment import Ran
from explorer.spec.presets import DJL_DEFAULT

__all__ = ["STEPS"]

F = Framework
_DJL = tuple(DJL_DEFAULT)
_NORMAL = (*_DJL, {"init": "normal", "target": "*.weight", "mean": 0.0, "std": 0.01})
_XAVIER_ZEROS = (
    *_DJL,
    {"init": "xavier_uniform", "target": "0.weight", "gain": DJL_XAVIER_GAIN},
    {"init": "zeros", "target": "2.weight"},
)
_BY_KEY = (
    *_DJL,
    {"init": "normal", "target": "0.weight", "mean": 0.0, "std": 0.01},
    {"init": "ones", "target": "2.weight"},
)
_MY_INIT = (*_DJL, {"init": "d2l_mixture", "target": "*.weight"})
_TIED_NET = {
    "type": "sequential",
    "children": [
        {"type": "linear", "out_features": 8},
        {"type": "relu"},
        {
            "type": "sequential",
            "name": "sharedRelu",
            "children": [{"type": "linear", "out_features": 8}, {"type": "relu"}],
        },
        {"type": "shared", "ref": "sharedRelu"},
        {"type": "linear", "out_features": 10},
    ],
}
_ON_CPU = "the seed ran on gpu(0); the app prints cpu()"


def _nd(t: torch.Tensor) -> str:
    """An NDArray as DJL prints it: ``ND: (2, 1) cpu() float32`` and its values."""
    return f.djl_text("ND", t).replace("ND: ", "ND: ", 1).replace(" hasGradient", "")


def _keys_and_values(s) -> str:
    keys = listing(s.module, F.DJL)
    values = "\n".join(f.djl_text(n.rpartition(".")[2], p) for n, p in s.module.named_parameters())
    return f"{keys}\n{values}"


def _rgnet_params(s) -> str:
    return "\n".join(
        f.djl_text(n.rpartition(".")[2], p).splitlines()[0] for n, p in s.module.named_parameters()
    )


_MLP = Setup("mlp", rules=_NORMAL)

STEPS: tuple[Step, ...] = (
    Step(
        "net",
        "The MLP, NormalInitializer, and a forward pass",
        "NDManager manager = NDManager.newBaseManager();\n\n"
        "NDArray x = manager.randomUniform(0, 1, new Shape(2, 4));\n\n"
        "SequentialBlock net = new SequentialBlock();\n"
        "net.add(Linear.builder().setUnits(8).build());\n"
        "net.add(Activation.reluBlock());\n"
        "net.add(Linear.builder().setUnits(1).build());\n"
        "net.setInitializer(new NormalInitializer(), Parameter.Type.WEIGHT);\n"
        "net.initialize(manager, DataType.FLOAT32, x.getShape());\n\n"
        "ParameterStore ps = new ParameterStore(manager, false);\n"
        "net.forward(ps, new NDList(x), false).head(); // forward computation",
        "DJL",
        ("ND: (2, 1) gpu(0) float32 [[-2.03669551e-05], [-1.32092864e-05], ]",),
        _MLP,
        lambda s: _nd(s.last_run.output),
        (f.within("0.weight", 0.06), f.is_zero("0.bias"), f.is_zero("2.bias")),
        "NormalInitializer() is σ = 0.01 on the weights; the biases keep DJL's default, 0.",
        note=_ON_CPU,
    ),
    Step(
        "params",
        "Parameters by key and by position",
        "ParameterList params = net.getParameters();\n"
        "// Print out all the keys (unique!)\n"
        "for (var pair : params) {\n"
        "    System.out.println(pair.getKey());\n"
        "}\n\n"
        "// Use the unique key to access the Parameter\n"
        'NDArray dense0Weight = params.get("01Linear_weight").getArray();\n'
        'NDArray dense0Bias = params.get("01Linear_bias").getArray();\n\n'
        "// Use indexing to access the Parameter\n"
        "NDArray dense1Weight = params.valueAt(2).getArray();\n"
        "NDArray dense1Bias = params.valueAt(3).getArray();\n\n"
        "System.out.println(dense0Weight);\n"
        "System.out.println(dense0Bias);\n\n"
        "System.out.println(dense1Weight);\n"
        "System.out.println(dense1Bias);",
        "DJL",
        (
            "01Linear_weight 01Linear_bias 03Linear_weight 03Linear_bias weight: (8, 4) gpu(0) "
            "float32 hasGradient",
        ),
        Setup("mlp", rules=_NORMAL, tab="All parameters"),
        _keys_and_values,
        (
            f.text_agrees(
                lambda s: listing(s.module, F.DJL),
                "01Linear_weight 01Linear_bias 03Linear_weight 03Linear_bias",
                "the keys",
            ),
        ),
        "The keys number each child with its class (the ReLU is 02LambdaBlock); "
        "params.valueAt(2) is 03Linear_weight. All parameters tab, DJL.",
        note=_ON_CPU,
    ),
    Step(
        "grad",
        "The gradient before backward: zeros",
        "dense0Weight.getGradient();",
        "DJL",
        ("ND: (8, 4) gpu(0) float32 [[0., 0., 0., 0.], [0., 0., 0., 0.],",),
        Setup("mlp", rules=_NORMAL, select="0/weight"),
        lambda s: (
            "// PyTorch: net[0].weight.grad is None; DJL attached zeros:\n"
            + _nd(torch.zeros_like(f.tensor_at(s, "0.weight")))
            + f"\n// {DJL_GRADIENTS}"
        ),
        (f.grad_is_none("0.weight"),),
        "The box *No gradient yet*, DJL line: getGradient() is zeros until a "
        "GradientCollector runs backward; requireGradient() and attachGradient() (0.11+: "
        "requiresGradient(), setRequiresGradient()).",
        note=_ON_CPU,
    ),
    Step(
        "rgnet",
        "Nested blocks: rgnet",
        "public SequentialBlock block1() {\n"
        "    SequentialBlock net = new SequentialBlock();\n"
        "    net.add(Linear.builder().setUnits(32).build());\n"
        "    net.add(Activation.reluBlock());\n"
        "    net.add(Linear.builder().setUnits(16).build());\n"
        "    net.add(Activation.reluBlock());\n"
        "    return net;\n"
        "}\n\n"
        "public SequentialBlock block2() {\n"
        "    SequentialBlock net = new SequentialBlock();\n"
        "    for (int i = 0; i < 4; i++) {\n"
        "        net.add(block1());\n"
        "    }\n"
        "    return net;\n"
        "}\n\n"
        "SequentialBlock rgnet = new SequentialBlock();\n"
        "rgnet.add(block2());\n"
        "rgnet.add(Linear.builder().setUnits(10).build());\n"
        "rgnet.setInitializer(new NormalInitializer(), Parameter.Type.WEIGHT);\n"
        "rgnet.initialize(manager, DataType.FLOAT32, x.getShape());\n\n"
        "rgnet.forward(ps, new NDList(x), false).singletonOrThrow();\n\n"
        "// next cell\n"
        "/* Network Architecture for RgNet */\n"
        "rgnet",
        "DJL",
        (
            "SequentialBlock(2, 4) { SequentialBlock(2, 4) { SequentialBlock(2, 4) { "
            "Linear(2, 4) -> (2, 32) ReLU(2, 32) -> (2, 32) Linear(2, 32) -> (2, 16) "
            "ReLU(2, 16) -> (2, 16) } -> (2, 16)",
        ),
        Setup("djl_rgnet", rules=_NORMAL),
        lambda s: djl_structure(s.module, tuple(s.experiment.input_shape)) or "",
        (
            lambda s: (
                "the structure, as printed",
                f.squash(
                    "SequentialBlock(2, 4) { SequentialBlock(2, 4) { SequentialBlock(2, 4) { "
                    "Linear(2, 4) -> (2, 32) ReLU(2, 32) -> (2, 32) Linear(2, 32) -> (2, 16) "
                    "ReLU(2, 16) -> (2, 16) } -> (2, 16)"
                )
                in f.squash(djl_structure(s.module, tuple(s.experiment.input_shape)) or ""),
            ),
            f.count(4074),
        ),
        "The tree with each block's output shape, as DJL prints them; 4,074 parameters.",
    ),
    Step(
        "rgnet_params",
        "rgnet's parameters, in order",
        "/* Parameters for RgNet */\n"
        "for (var param : rgnet.getParameters()) {\n"
        "    System.out.println(param.getValue().getArray());\n"
        "}",
        "DJL",
        (
            "weight: (32, 4) gpu(0) float32 hasGradient [ Exceed max print size ] bias: (32) "
            "gpu(0) float32 hasGradient [0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., "
            "0., 0., 0., 0., 0., 0., 0., ... 12 more] weight: (16, 32) gpu(0) float32 "
            "hasGradient [ Exceed max print size ]",
        ),
        Setup("djl_rgnet", rules=_NORMAL, tab="All parameters"),
        _rgnet_params,
        (f.is_zero("0.0.0.bias"), f.is_zero("1.bias")),
        "Every weight, then its bias, block by block; all biases 0.",
        note=_ON_CPU,
    ),
    Step(
        "nested",
        "A nested parameter through getChildren()",
        "Block majorBlock1 = rgnet.getChildren().get(0).getValue();\n"
        "Block subBlock2 = majorBlock1.getChildren().valueAt(1);\n"
        "Block linearLayer1 = subBlock2.getChildren().valueAt(0);\n"
        "NDArray bias = linearLayer1.getParameters().valueAt(1).getArray();\n"
        "bias",
        "DJL",
        ("bias: (32) gpu(0) float32 hasGradient [0., 0., 0., 0., 0., 0., 0., 0.,",),
        Setup("djl_rgnet", rules=_NORMAL, select="0.1.0/bias"),
        lambda s: f.djl_text("bias", f.tensor_at(s, "0.1.0.bias")),
        (f.is_zero("0.1.0.bias"),),
        "rgnet[0][1][0].bias in PyTorch; the editions box lists the DJL path.",
        note=_ON_CPU,
    ),
    Step(
        "constant_ignored",
        "setInitializer on an initialized net changes nothing",
        "net.setInitializer(new ConstantInitializer(1), Parameter.Type.WEIGHT);\n"
        "net.initialize(manager, DataType.FLOAT32, x.getShape());\n"
        "Block linearLayer = net.getChildren().get(0).getValue();\n"
        "NDArray weight = linearLayer.getParameters().get(0).getValue().getArray();\n"
        "weight",
        "DJL",
        ("weight: (8, 4) gpu(0) float32 hasGradient [[ 0.0014, -0.0122, 0.0031, 0.0111],",),
        Setup("mlp", rules=tuple(RECIPES["djl_set_initializer"].rules), select="0/weight"),
        lambda s: f.djl_text("weight", f.tensor_at(s, "0.weight")),
        (
            f.within("0.weight", 0.06),
            lambda s: ("not all 1", bool((f.tensor_at(s, "0.weight") != 1).any())),
        ),
        "The values are still NormalInitializer's: initialized parameters are kept (the rule "
        "*Constant(1)* does not overwrite, as Gluon without force_reinit).",
        note=_ON_CPU,
    ),
    Step(
        "constant_fresh",
        "A fresh net takes the initializer: 7777",
        "SequentialBlock net = getNet();\n"
        "net.setInitializer(new ConstantInitializer(7777), Parameter.Type.WEIGHT);\n"
        "net.initialize(manager, DataType.FLOAT32, x.getShape());\n"
        "Block linearLayer = net.getChildren().valueAt(0);\n"
        "NDArray weight = linearLayer.getParameters().valueAt(0).getArray();\n"
        "weight",
        "DJL",
        ("weight: (8, 4) gpu(0) float32 hasGradient [[7777., 7777., 7777., 7777.],",),
        Setup("mlp", rules=tuple(RECIPES["djl_fresh_7777"].rules), select="0/weight"),
        lambda s: f.djl_text("weight", f.tensor_at(s, "0.weight")),
        (f.all_equal("0.weight", 7777.0), f.is_zero("0.bias")),
        "Every weight is 7777; the biases keep DJL's default 0.",
        note=_ON_CPU,
    ),
    Step(
        "normal",
        "Gaussian weights: NormalInitializer",
        "net = getNet();\n"
        "net.setInitializer(new NormalInitializer(), Parameter.Type.WEIGHT);\n"
        "net.initialize(manager, DataType.FLOAT32, x.getShape());\n"
        "Block linearLayer = net.getChildren().valueAt(0);\n"
        "NDArray weight = linearLayer.getParameters().valueAt(0).getArray();\n"
        "weight",
        "DJL",
        ("weight: (8, 4) gpu(0) float32 hasGradient [[-0.0177, 0.0105, 0.0094, 0.0044],",),
        Setup("mlp", rules=_NORMAL, select="0/weight"),
        lambda s: f.djl_text("weight", f.tensor_at(s, "0.weight")),
        (f.within("0.weight", 0.06), f.is_zero("0.bias")),
        "The N(0, 0.01²) density over 0.weight's histogram.",
        note=_ON_CPU,
    ),
    Step(
        "xavier_zeros",
        "Different initializers: Xavier on linear1, zeros on linear2",
        "net = new SequentialBlock();\n"
        "Linear linear1 = Linear.builder().setUnits(8).build();\n"
        "net.add(linear1);\n"
        "net.add(Activation.reluBlock());\n"
        "Linear linear2 = Linear.builder().setUnits(1).build();\n"
        "net.add(linear2);\n\n"
        "linear1.setInitializer(new XavierInitializer(), Parameter.Type.WEIGHT);\n"
        "linear1.initialize(manager, DataType.FLOAT32, x.getShape());\n\n"
        "linear2.setInitializer(Initializer.ZEROS, Parameter.Type.WEIGHT);\n"
        "linear2.initialize(manager, DataType.FLOAT32, x.getShape());\n\n"
        "System.out.println(linear1.getParameters().valueAt(0).getArray());\n"
        "System.out.println(linear2.getParameters().valueAt(0).getArray());",
        "DJL",
        ("[ 0.7445, -0.1896, 0.9236, -0.9658]", "weight: (1, 4) gpu(0) float32 hasGradient"),
        Setup("mlp", rules=_XAVIER_ZEROS, select="0/weight"),
        lambda s: (
            f"{f.djl_text('weight', f.tensor_at(s, '0.weight'))}\n"
            f"{f.djl_text('weight', f.tensor_at(s, '2.weight'))}"
        ),
        (f.within("0.weight", 1.0), f.all_equal("2.weight", 0.0)),
        "new XavierInitializer() is uniform ±√(6/((4+8)/2)) = ±1.0 (the seed reaches −0.9658); "
        "linear2 is zeros. The seed prints (1, 4) because linear2 was initialized on x's "
        "shape directly; in the net it is (1, 8).",
        note=_ON_CPU,
    ),
    Step(
        "by_key",
        "One parameter's initializer, by its key",
        "net = getNet();\n"
        "ParameterList params = net.getParameters();\n\n"
        'params.get("01Linear_weight").setInitializer(new NormalInitializer());\n'
        'params.get("03Linear_weight").setInitializer(Initializer.ONES);\n\n'
        "net.initialize(manager, DataType.FLOAT32, new Shape(2, 4));\n\n"
        "System.out.println(params.valueAt(0).getArray());\n"
        "System.out.println(params.valueAt(2).getArray());",
        "DJL",
        ("weight: (8, 4) gpu(0) float32 hasGradient [[-1.15521299e-03,",),
        Setup("mlp", rules=_BY_KEY, select="2/weight"),
        lambda s: (
            f"{f.djl_text('weight', f.tensor_at(s, '0.weight'))}\n"
            f"{f.djl_text('weight', f.tensor_at(s, '2.weight'))}"
        ),
        (f.within("0.weight", 0.06), f.all_equal("2.weight", 1.0)),
        "03Linear_weight is 2.weight: all ones. The Initialize tab's rules target one "
        "parameter each.",
        note=_ON_CPU,
    ),
    Step(
        "my_init",
        "A custom initializer: MyInit",
        MY_INIT[F.DJL].replace("net.setInitializer", "net = getNet();\nnet.setInitializer")
        + "\nnet.initialize(manager, DataType.FLOAT32, x.getShape());",
        "DJL",
        ("Init (8, 4) Init (1, 8)",),
        Setup("mlp", rules=_MY_INIT, select="0/weight"),
        lambda s: f"{f.prints_of(s, F.DJL)}\n{f.djl_text('weight', f.tensor_at(s, '0.weight'))}",
        (
            f.text_agrees(lambda s: f.prints_of(s, F.DJL), "Init (8, 4) Init (1, 8)", "the prints"),
            f.kept_or_zero("0.weight", 5, 10),
        ),
        "Half the weights are 0, the rest in [5, 10] or [-10, -5].",
        note=_ON_CPU,
        quoted=False,
    ),
    Step(
        "edit",
        "Setting values: addi, divi, set",
        "// '__'i() is an inplace operation to modify the original NDArray\n"
        "NDArray weightLayer = net.getChildren().valueAt(0)\n"
        "    .getParameters().valueAt(0).getArray();\n"
        "weightLayer.addi(7);\n"
        "weightLayer.divi(9);\n"
        "weightLayer.set(new NDIndex(0, 0), 2020); // set the (0, 0) index to 2020\n"
        "weightLayer;",
        "DJL",
        ("[[ 2.02000000e+03, 9.33975633e-03, 7.77777791e-01, -1.63584173e-01],",),
        Setup(
            "mlp",
            rules=_MY_INIT,
            ops=(
                edit("0.weight", "add", 7.0),
                edit("0.weight", "divide", 9.0),
                edit("0.weight", "set", 2020.0, (0, 0)),
            ),
            select="0/weight",
        ),
        lambda s: f.djl_text("weight", f.tensor_at(s, "0.weight")),
        (
            f.edited("0.weight", (0, 0), 2020.0),
            lambda s: (
                "7/9 = 0.7777778 where my_init drew 0",
                bool((f.tensor_at(s, "0.weight") == torch.tensor(7.0) / 9).any()),
            ),
        ),
        "(0 + 7) / 9 = 0.7777778 in every cell my_init left at 0, as in the seed; (0, 0) is "
        "2020. The last edit, DJL line, under the form.",
        note=_ON_CPU,
    ),
    Step(
        "tied",
        "Tied parameters: one block added twice",
        "SequentialBlock net = new SequentialBlock();\n\n"
        "// We need to give the shared layer a name\n"
        "// such that we can reference its parameters\n"
        "Block shared = Linear.builder().setUnits(8).build();\n"
        "SequentialBlock sharedRelu = new SequentialBlock();\n"
        "sharedRelu.add(shared);\n"
        "sharedRelu.add(Activation.reluBlock());\n\n"
        "net.add(Linear.builder().setUnits(8).build());\n"
        "net.add(Activation.reluBlock());\n"
        "net.add(sharedRelu);\n"
        "net.add(sharedRelu);\n"
        "net.add(Linear.builder().setUnits(10).build());",
        "DJL",
        ("ND: (8, 8) gpu(0) boolean [[ true, true, true, true, true, true, true, true],",),
        Setup("mlp", spec=_TIED_NET, rules=_NORMAL, input_shape=(2, 20), select="3.0/weight"),
        lambda s: (
            "ND: (8, 8) cpu() boolean\n"
            + str((f.tensor_at(s, "2.0.weight") == f.tensor_at(s, "3.0.weight")).numpy()).lower()
        ),
        (f.tied_names(["2.0.weight", "3.0.weight"]), f.count(330)),
        "getChildren().valueAt(2) and .valueAt(3) are one block: its weight carries one "
        "*tied* badge under both names.",
        note=_ON_CPU,
    ),
    Step(
        "tied_grad",
        "Tied gradients are added together",
        "try (GradientCollector gc = Engine.getInstance().newGradientCollector()) {\n"
        "    NDArray loss = net.forward(ps, new NDList(x), true).singletonOrThrow().sum();\n"
        "    gc.backward(loss);\n"
        "}\n"
        "shared.getParameters().valueAt(0).getArray().getGradient();",
        "DJL",
        (
            "the gradients of the second hidden layer and the third hidden layer are added "
            "together in ``shared.getGradient()`` during backpropagation",
        ),
        Setup(
            "mlp",
            spec=_TIED_NET,
            rules=_NORMAL,
            input_shape=(2, 20),
            ran=Ran.BACKWARD,
            select="2.0/weight",
        ),
        lambda s: _nd(s.module.get_parameter("2.0.weight").grad),
        (f.uses_add_up("2.0.weight", 2),),
        "Use 1, use 2 and their sum. A Block has no getGradient(): the sum is on the "
        "parameter's NDArray, shared.getParameters().valueAt(0).getArray().getGradient().",
        note="the chapter says it in words; the code is the DJL gradient API",
        quoted=False,
    ),
    Step(
        "ex_fancy",
        "Exercise 1: the parameters of FancyMLP (FixedHiddenMLP)",
        "FixedHiddenMLP net = new FixedHiddenMLP();\n"
        "for (var pair : net.getParameters()) {\n"
        "    System.out.println(pair.getKey());\n"
        "}",
        "DJL",
        ("Use the FancyMLP defined in :numref:`sec_model_construction` and access the",),
        Setup("fancy_mlp", rules=_DJL, tab="All parameters"),
        lambda s: listing(s.module, F.DJL),
        (f.listed(F.DJL, "01denseLayer_weight 01denseLayer_bias"), f.count(420)),
        "DJL's FixedHiddenMLP adds its Linear as the child block denseLayer: keys "
        "01denseLayer_weight, 01denseLayer_bias; its constant weight is a plain NDArray.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_deferred",
        "Exercise 3: the parameters before the first prediction",
        "net.initialize(manager, DataType.FLOAT32, x.getShape());\n"
        "// and before predictor.predict(x): look at the shapes",
        "DJL",
        ("Try accessing the model parameters after ``net.initialize()`` and before",),
        Setup("mlp", rules=_DJL, ran=Ran.NONE, select="0/weight"),
        lambda s: listing(s.module, F.DJL),
        (lambda s: ("0.weight has no shape yet", s.tree.params["0.weight"].is_lazy),),
        "PyTorch's lazy layers have no shape before the first forward (DJL's initialize "
        "takes the input shape instead). Press Forward: the root block shows before and after.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_train",
        "Exercise 4: train an MLP with a shared layer",
        "// Construct a multilayer perceptron containing a shared parameter layer and train it.",
        "DJL",
        ("Construct a multilayer perceptron containing a shared parameter layer and train it.",),
        Setup("mlp", spec=_TIED_NET, rules=_NORMAL, input_shape=(2, 20), tab="Train"),
        lambda s: listing(s.module, F.DJL),
        (f.trained(),),
        "The Train tab: press Train; each use's gradient norm against their sum.",
        exercise=True,
        quoted=False,
    ),
    Step(
        "ex_why",
        "Exercise 5: why is sharing parameters a good idea?",
        "// Why is sharing parameters a good idea?",
        "DJL",
        ("Why is sharing parameters a good idea?",),
        Setup(
            "mlp", spec=_TIED_NET, rules=_NORMAL, input_shape=(2, 20), ran=Ran.BACKWARD, tab="Code"
        ),
        lambda s: str(s.tree.counts()),
        (f.tied_names(["2.0.weight", "3.0.weight"]),),
        "The Code tab's *Why share parameters?*, with this model's numbers.",
        exercise=True,
        quoted=False,
    ),
)
