"""The formula language: PyTorch is the reference answer, and nothing escapes the sandbox."""

import math
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import explorer.init.formula as formula_module
from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS
from explorer.init.formula import FUNCTIONS, NAMES, Formula, check_formula, parse_formula

MIXTURE = "u = uniform(-10, 10); where(abs(u) >= 5, u, 0)"


def run(expr, shape=(3, 3), seed=0, **kwargs):
    generator = torch.Generator().manual_seed(seed)
    return parse_formula(expr).evaluate(shape, generator=generator, **kwargs)


def test_he_formula_has_kaiming_std():
    """normal(0, 1) * sqrt(2 / fan_in) has the std torch's kaiming_normal_ aims for."""
    values = run("normal(0, 1) * sqrt(2 / fan_in)", (256, 512))
    expected = torch.nn.init.calculate_gain("relu") / math.sqrt(512)
    assert values.std().item() == pytest.approx(expected, rel=0.05)
    assert values.mean().item() == pytest.approx(0.0, abs=0.01)


def test_chapter_mixture_is_half_zeros_and_half_far_from_zero():
    """The chapter's U(-10, 10) kept where |u| >= 5 is about half zeros, the rest in 5..10."""
    values = run(MIXTURE, (100, 100))
    zeros = (values == 0).float().mean().item()
    kept = values[values != 0].abs()
    assert zeros == pytest.approx(0.5, abs=0.05)
    assert kept.min().item() >= 5 and kept.max().item() <= 10


def test_assignment_is_drawn_once():
    """A name bound with '=' holds one draw, so u - u is exactly zero."""
    assert torch.equal(run("u = normal(0, 1); u - u"), torch.zeros(3, 3))


def test_later_assignment_can_use_earlier_one():
    """Assignments run in order and may refer to earlier ones."""
    assert torch.equal(run("a = 2; b = a * 3; b + a"), torch.full((3, 3), 8.0))


def test_identity_from_index_grids():
    """where(i == j, 1, 0) on (3, 3) equals torch.eye(3)."""
    assert torch.equal(run("where(i == j, 1, 0)"), torch.eye(3))


def test_current_values_are_used_and_left_unchanged():
    """w * 2 + 1 equals current * 2 + 1, and current is not modified."""
    current = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    before = current.clone()
    assert torch.equal(run("w * 2 + 1", (4, 5), current=current), current * 2 + 1)
    assert torch.equal(current, before)


def test_clip_matches_torch_clamp():
    """clip(w, -1, 1) equals torch.clamp(current, -1, 1)."""
    current = 3 * torch.randn(6, 7, generator=torch.Generator().manual_seed(2))
    assert torch.equal(run("clip(w, -1, 1)", (6, 7), current=current), current.clamp(-1, 1))


def test_constant_broadcasts_to_shape():
    """A constant fills the whole requested shape."""
    assert torch.equal(run("0.5", (2, 3, 4)), torch.full((2, 3, 4), 0.5))


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("i < j", torch.ones(3, 3).triu(1)),
        ("i >= j", torch.ones(3, 3).tril()),
        ("(i == 0) | (j == 0)", torch.tensor([[1.0, 1, 1], [1, 0, 0], [1, 0, 0]])),
        ("(i > 0) & (j > 0)", torch.tensor([[0.0, 0, 0], [0, 1, 1], [0, 1, 1]])),
        ("not(i != j)", torch.eye(3)),
    ],
)
def test_comparisons_and_logic_give_masks(expr, expected):
    """Comparisons, & and | give 0/1 masks like torch's boolean ops."""
    assert torch.equal(run(expr), expected)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("2 + 3 * 4 ** 2", 2 + 3 * 4**2),
        ("-2 ** 2", -(2**2)),
        ("2 ** 3 ** 2", 2**3**2),
        ("2 ** -1", 2**-1),
        ("(2 + 3) * 4", (2 + 3) * 4),
        ("10 - 4 - 3", 10 - 4 - 3),
        ("1 + 2 < 4 & 3 > 2", 1.0),
        ("1.5e1 / .5", 1.5e1 / 0.5),
    ],
)
def test_operator_precedence_follows_python(expr, expected):
    """Arithmetic precedence and associativity match Python's."""
    assert torch.equal(run(expr, ()), torch.tensor(float(expected)))


@pytest.mark.parametrize("shape", [(8, 4, 3, 3), (10, 20), (7,), ()])
def test_fans_match_torch_init(shape):
    """fan_in and fan_out follow torch.nn.init; 1-D uses shape[0], 0-D uses 1."""
    if len(shape) >= 2:
        fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    else:
        fan_in = fan_out = shape[0] if shape else 1
    assert run("fan_in", shape).flatten()[0].item() == fan_in
    assert run("fan_out", shape).flatten()[0].item() == fan_out


def test_shape_names():
    """numel, ndim, rows and cols describe the requested shape."""
    assert run("numel + 100 * ndim", (2, 3, 4))[0, 0, 0].item() == 24 + 300
    assert run("rows * 10 + cols", (5,)).tolist() == [51.0] * 5


def test_index_grids_on_1d():
    """On a 1-D tensor, i counts the elements and j is 0."""
    assert torch.equal(run("i + 10 * j", (4,)), torch.arange(4.0))


def test_same_seed_is_bit_identical():
    """The same formula and seed give bit-identical tensors."""
    assert torch.equal(run(MIXTURE, (50, 50), seed=7), run(MIXTURE, (50, 50), seed=7))


def test_different_seed_differs():
    """Different seeds give different draws."""
    assert not torch.equal(run(MIXTURE, (50, 50), seed=7), run(MIXTURE, (50, 50), seed=8))


def test_each_call_draws_fresh_values():
    """Two calls of normal() draw different tensors."""
    assert not torch.equal(run("normal(0, 1) - normal(0, 1)"), torch.zeros(3, 3))


def test_trunc_normal_stays_inside_bounds():
    """trunc_normal(0, 1, -2, 2) stays in [-2, 2], like torch's trunc_normal_."""
    values = run("trunc_normal(0, 1, -2, 2)", (200, 200))
    reference = torch.nn.init.trunc_normal_(
        torch.empty(200, 200), 0, 1, -2, 2, generator=torch.Generator().manual_seed(0)
    )
    assert values.min().item() >= -2 and values.max().item() <= 2
    assert values.std().item() == pytest.approx(reference.std().item(), rel=0.05)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4), (6,), ()])
def test_result_has_requested_shape_and_dtype(dtype, shape):
    """The result has exactly the requested shape and dtype."""
    values = run("normal(0, 1) * 0.1 + 1", shape, dtype=dtype)
    assert values.shape == torch.Size(shape) and values.dtype == dtype


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_runs_with_its_arity(name):
    """Each listed function evaluates with its arity and gives finite values."""
    arity = FUNCTIONS[name][0]
    args = ", ".join(["0.5", "1", "-2", "2"][:arity])
    assert torch.isfinite(run(f"{name}({args})")).all()


@pytest.mark.parametrize("name", sorted(NAMES))
def test_every_name_evaluates(name):
    """Each listed name evaluates to finite values."""
    assert torch.isfinite(run(name, (3, 4), current=torch.zeros(3, 4))).all()


def test_w_without_current_is_refused():
    """Using w when the parameter has no current values raises SpecError."""
    with pytest.raises(SpecError, match="no current values"):
        run("w + 1")


def test_huge_shape_is_refused_before_allocating():
    """A shape over 50,000,000 elements is refused at once."""
    start = time.perf_counter()
    with pytest.raises(SpecError, match="limit"):
        run("1", (100_000, 100_000))
    assert time.perf_counter() - start < 1.0


def test_sixteen_draws_are_allowed():
    """Up to 16 random draws are allowed."""
    assert run(" + ".join(["normal(0, 1)"] * 16)).shape == (3, 3)


def test_seventeen_draws_are_refused():
    """A 17th random draw is refused with the limit."""
    with pytest.raises(SpecError, match="the limit is 16"):
        parse_formula(" + ".join(["normal(0, 1)"] * 17))


ESCAPES = [
    "().__class__.__bases__",
    "__import__('os')",
    "__import__",
    "os",
    "open('/etc/passwd')",
    "9**9**9",
    "10**10**10",
    "exp(exp(exp(100)))",
    "1 / 0",
    "sqrt(-1)",
    "1<<10**8",
    "1 >> 2",
    "7 // 2",
    "7 % 2",
    "w @ w",
    "~1",
    "2 ^ 3",
    '"a"*10**9',
    "[1]*10**9",
    "{1: 2}",
    "x.real",
    "fan_in.__class__",
    "(1).real",
    "lambda: 1",
    "uniform(a=1, b=2)",
    "getattr(w, 'data')",
    "exec('1')",
    "eval('1')",
    "compile",
    "w[0]",
    "(1,2)",
    "1 if 1 else 0",
    "a:=1",
    "fan_in(1)",
    "foo(1)",
    "uniform(1)",
    "clip(w, 1)",
    "sqrt",
    "fan_in = 3; fan_in",
    "u = 1; u = 2; u",
    "1; 2",
    "1 < 2 < 3",
    "1 +",
    "()",
    "1e",
    "x" * 40,
    "1+" * 50000 + "1",
    "(" * 1000 + "1" + ")" * 1000,
    "(" * 60 + "1" + ")" * 60,
    "-" * 5000 + "1",
    "-" * 60 + "1",
    "2 ** " * 60 + "2",
    "1+" * 150 + "1",
    "+".join(["normal(0,1)"] * 100),
    "",
    "   ",
    "\x00",
    "１",
    "1\nimport os",
    "π",
]


@pytest.mark.parametrize("expr", ESCAPES, ids=[repr(e[:30]) for e in ESCAPES])
def test_escapes_and_bombs_are_refused_quickly(expr):
    """Sandbox escapes and resource bombs raise a one-line SpecError within a second."""
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        parse_formula(expr).evaluate((2, 2), current=torch.ones(2, 2))
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    assert any(word in message for word in ("allowed", "limit", "inf/nan")), message


PIECES = [
    "1",
    "2.5",
    "1e300",
    "-",
    "+",
    "*",
    "/",
    "**",
    "(",
    ")",
    ",",
    ";",
    "=",
    "<",
    "==",
    "&",
    "|",
    "w",
    "i",
    "fan_in",
    "u",
    "abs",
    "where",
    "normal",
    "clip",
    ".",
    "[",
    "'",
    " ",
    "x",
    "__class__",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_random_token_soup_only_raises_spec_error(pieces):
    """Any mix of tokens either evaluates to the full shape or raises SpecError."""
    try:
        values = parse_formula("".join(pieces)).evaluate((2, 3), current=torch.ones(2, 3))
    except SpecError as error:
        assert "\n" not in str(error)
    else:
        assert values.shape == (2, 3) and torch.isfinite(values).all()


def test_refusal_names_the_position():
    """A syntax error gives the 1-based position of the offending name."""
    with pytest.raises(SpecError, match=r"unknown method '__class__' at position 8"):
        parse_formula("fan_in.__class__")


def test_the_chapters_own_statements_are_read_as_the_formula():
    """PyTorch's spelling from the chapter (``w * (w.abs() >= 5)``, ``torch.where``, ``.data``,
    ``.clamp``, ``torch.randn_like(w)``) means what the formula's own functions mean."""
    w = torch.linspace(-10, 10, 24).reshape(4, 6)
    same = [
        ("w * (w.abs() >= 5)", "w * (abs(w) >= 5)"),
        ("torch.where(w.data.abs() >= 5, w, 0)", "where(abs(w) >= 5, w, 0)"),
        (
            "w.clamp(-1, 1) + math.sqrt(2 / fan_in) * math.pi",
            "clip(w, -1, 1) + sqrt(2 / fan_in) * pi",
        ),
        ("torch.maximum(w.sign(), torch.tanh(w))", "max(sign(w), tanh(w))"),
    ]
    for chapter, own in same:
        assert torch.equal(
            parse_formula(chapter).evaluate((4, 6), current=w),
            parse_formula(own).evaluate((4, 6), current=w),
        ), chapter
    a = run("u = uniform(-10, 10); u * (u.abs() >= 5)", (64, 64))
    b = run("u = uniform(-10, 10); where(abs(u) >= 5, u, 0)", (64, 64))
    assert torch.equal(a, b)
    assert torch.equal(run("torch.randn_like(w)", (8, 8)), run("normal(0, 1)", (8, 8)))


def test_methods_outside_the_list_are_refused():
    """No other attribute, module or method: the parser knows a few names, nothing is looked up."""
    for text, reason in [
        ("w.__class__", "unknown method '__class__'"),
        ("torch.load(w)", "unknown name 'torch.load'"),
        ("w.abs", "unknown method 'abs'"),
        ("torch.rand_like(u)", "unknown name 'u'"),
        ("os.system(1)", "unknown function 'os'|unknown name 'os'"),
    ]:
        with pytest.raises(SpecError, match=reason):
            parse_formula(text)


def test_a_missing_closing_parenthesis_is_named():
    """``uniform(-10, 10; …`` says a ')' is missing and where, not "unexpected ';'"."""
    with pytest.raises(SpecError) as err:
        parse_formula("u = uniform(-10, 10; where(abs(u) >= 5, u, 0)")
    message = str(err.value)
    assert message.startswith("formula: missing ')': the '(' at position 12 is not closed")
    assert "add ')' where ';' is, at position 20" in message
    with pytest.raises(SpecError, match=r"missing '\)'.*add '\)' at the end, at position 24"):
        parse_formula("where(abs(w) >= 5, w, 0")


def test_long_expression_names_the_limit():
    """A 100 kB expression is refused with the length limit."""
    with pytest.raises(SpecError, match="the limit is 1000"):
        parse_formula("1+" * 50000 + "1")


def test_check_formula_accepts_good_expression():
    """check_formula returns None for a valid formula."""
    assert check_formula(MIXTURE) is None


def test_check_formula_returns_message_for_bad_expression():
    """check_formula returns the SpecError message for an invalid formula."""
    message = check_formula("open('/etc/passwd')")
    with pytest.raises(SpecError) as info:
        parse_formula("open('/etc/passwd')")
    assert message == str(info.value) and "allowed" in message


def test_formula_is_a_frozen_record_compared_by_text():
    """Formulas compare by their text and cannot be changed."""
    formula = parse_formula("normal(0, 1)")
    assert formula == Formula("normal(0, 1)")
    assert repr(formula) == "Formula(expr='normal(0, 1)')"
    with pytest.raises(AttributeError):
        formula.expr = "1"


# Issue 10 row 5: each pending "-w" is a temporary, so this holds 38 of them at once.
DEEP_38 = "-w*(" * 37 + "-w*w" + ")" * 37

MEMORY_CHILD = """
import resource, sys, torch
from explorer.init.formula import parse_formula
formula = parse_formula(sys.argv[1])
current = torch.full((4096, 4096), 0.5)
vm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
          if line.startswith("VmSize:"))
cap = vm + 768 * 2**20  # 768 MiB more: the result (64 MiB) fits, 38 full temporaries do not
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
out = formula.evaluate((4096, 4096), current=current)
print(out.shape == (4096, 4096), out[0, 0].item(), out[-1, -1].item())
"""


def test_deep_formula_counts_its_temporaries():
    """The 38-deep product is counted as needing at least 38 live temporaries."""
    assert parse_formula(DEEP_38).temporaries >= 38
    assert parse_formula("normal(0, 1) * 0.02").temporaries <= 5


def test_38_temporaries_on_a_4096_square_fit_in_bounded_memory():
    """Issue 10 row 5: a 38-temporary formula on 4096² runs under an address-space cap."""
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, DEEP_38],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    ok, first, last = done.stdout.split()
    # (-w) * ... 38 times * w on w = 0.5: (-0.5) ** 38 * 0.5
    assert ok == "True" and float(first) == float(last) == (-0.5) ** 38 * 0.5


def test_chunked_rows_give_the_same_values_as_one_pass(monkeypatch):
    """Evaluating in row chunks changes nothing for a formula of indices and w."""
    current = torch.randn(37, 5, generator=torch.Generator().manual_seed(0))
    whole = parse_formula("w * 2 + i * 10 - j").evaluate((37, 5), current=current)
    monkeypatch.setattr(formula_module, "CHUNK_BYTES", 64)
    assert parse_formula("w * 2 + i * 10").chunk_rows((37, 5), torch.float32) < 37
    chunked = parse_formula("w * 2 + i * 10 - j").evaluate((37, 5), current=current)
    reference = current * 2 + torch.arange(37.0)[:, None] * 10 - torch.arange(5.0)
    assert torch.equal(whole, chunked) and torch.equal(whole, reference)


def test_a_row_needing_more_than_the_cap_is_refused_before_work():
    """When even one row's temporaries exceed max_formula_bytes, the formula is refused."""
    limits = replace(DEFAULT_LIMITS, max_formula_bytes=1024)
    formula = parse_formula(DEEP_38, limits)
    with pytest.raises(SpecError, match="temporaries .* the limit is 1,024 bytes"):
        formula.evaluate((2, 4096), current=torch.ones(2, 4096))


def test_formula_length_cap_comes_from_limits():
    """The length cap is Limits.max_formula_chars."""
    limits = replace(DEFAULT_LIMITS, max_formula_chars=5)
    assert parse_formula("1 + 1", limits)
    with pytest.raises(SpecError, match="the limit is 5"):
        parse_formula("1 + 12", limits)


@pytest.mark.parametrize(
    "expr", ["1 / 0", "exp(1000)", "log(0) + 1", "1 / (rows - 1 - i)", "sqrt(-1) * fan_in"]
)
def test_check_formula_on_a_shape_flags_inf_and_nan_while_typing(expr):
    """With the parameter's shape, 1/0, exp(1000) and a nan in the last row are flagged."""
    assert check_formula(expr) is None  # the syntax alone is fine
    message = check_formula(expr, (300, 8))
    assert message is not None and "inf/nan" in message


def test_check_formula_on_a_shape_accepts_finite_formulas():
    """He initialization and the chapter's mixture pass the live check on a real shape."""
    assert check_formula("normal(0, 1) * sqrt(2 / fan_in)", (256, 512)) is None
    assert check_formula(MIXTURE, (8, 4), torch.float64) is None


def test_check_formula_uses_the_current_values_when_given():
    """1 / w is flagged on zeros, accepted on ones, and not judged without values."""
    assert "inf/nan" in check_formula("1 / w", (4, 3), current=torch.zeros(4, 3))
    assert check_formula("1 / w", (4, 3), current=torch.ones(4, 3)) is None
    assert check_formula("1 / w", (4, 3)) is None


def test_check_formula_flags_values_beyond_the_dtype():
    """exp(100) is finite in float64 but inf in float32 and bfloat16."""
    assert check_formula("exp(100)", (2, 2), torch.float64) is None
    assert "inf/nan" in check_formula("exp(100)", (2, 2), torch.float32)
