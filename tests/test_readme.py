"""The README's notebook example runs and prints what the README says it prints."""

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_notebook_example_runs_and_its_comments_are_true():
    """Each `expr  # value` line of the notebook example evaluates to the value shown."""
    block = next(b for b in python_blocks() if "explorer.inspect" in b)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)  # our own README, not user text
    checks = {
        "tree.tied_groups": [{"2.bias", "4.bias"}, {"2.weight", "4.weight"}],
        'tree.access_path("4.weight")': "net[4].weight",
        'tree.select(".*weight")': ["0.weight", "2.weight", "4.weight", "6.weight"],
        'len(result.grad_by_use["2.weight"])': 2,
    }
    for expr, expected in checks.items():
        assert eval(expr, namespace) == expected, expr  # noqa: S307 - fixed strings above
        assert expr in block
    counts = namespace["tree"].counts()
    assert (counts.unique_tensors, counts.unique_elements) == (6, 121)
    assert (counts.state_dict_entries, counts.state_dict_elements) == (8, 193)


def test_rules_example_is_accepted():
    """The README's rule list passes rule validation."""
    block = next(b for b in python_blocks() if "rules = [" in b)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    from explorer.init.rules import check_rules

    assert len(check_rules(namespace["rules"])) == 4
