"""Name patterns: RE2 regexes (full or Gluon's prefix match) and globs, all in linear time."""

import fnmatch
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.core.errors import SpecError
from explorer.core.limits import DEFAULT_LIMITS
from explorer.core.patterns import MODE_LABELS, MatchMode, compile_pattern, select
from explorer.init.rules import check_rules, matches

GLOB_CHARS = st.sampled_from(list("ab.0*?[]!-^\\"))
NAME_CHARS = st.sampled_from(list("ab.0-[]!^\\"))


@settings(max_examples=1000, deadline=None)
@given(st.text(GLOB_CHARS, max_size=8), st.text(NAME_CHARS, max_size=8))
def test_globs_match_exactly_what_fnmatch_matches(glob, name):
    """A glob selects a name exactly when fnmatch.fnmatchcase does (stars, ?, [sets], [!sets])."""
    assert compile_pattern(glob, "glob").matches(name) == fnmatch.fnmatchcase(name, glob)


@settings(max_examples=300, deadline=None)
@given(
    st.text(GLOB_CHARS, max_size=6),
    st.lists(st.text(NAME_CHARS, max_size=8), max_size=8),
    st.sampled_from(list(MatchMode)),
)
def test_matching_a_list_of_names_selects_what_matches_selects(text, names, mode):
    """``Pattern.matching`` (one pass over the names) agrees with ``matches`` name by name."""
    try:
        pattern = compile_pattern(text, mode)
    except SpecError:
        return
    assert pattern.matching(names) == {n for n in names if pattern.matches(n)}


# The Gluon edition prints these for collect_params('.*weight') and collect_params('dense0.*'):
# "sequential0_ ( Parameter dense0_weight (shape=(256, 20), dtype=float32)
#   Parameter dense1_weight (shape=(10, 256), dtype=float32)" and
# "sequential0_ ( Parameter dense0_weight ... Parameter dense0_bias (shape=(256,), ...)"
GLUON_NAMES = ["dense0_weight", "dense0_bias", "dense1_weight", "dense1_bias"]
DEEP = ".".join(["0"] * 30)  # 30 nested sequential blocks


def test_gluon_regexes_keep_their_syntax():
    """'.*weight' and 'dense0.*' select what the Gluon seed prints for collect_params."""
    assert select(GLUON_NAMES, ".*weight") == ["dense0_weight", "dense1_weight"]
    assert select(GLUON_NAMES, "dense0.*") == ["dense0_weight", "dense0_bias"]
    assert select(GLUON_NAMES, "dense0_.*") == ["dense0_weight", "dense0_bias"]


def test_prefix_mode_is_gluons_match_from_the_start():
    """Prefix mode matches from the start like re.match: 'dense0' keeps dense0_*, full does not."""
    assert select(GLUON_NAMES, "dense0", "prefix") == ["dense0_weight", "dense0_bias"]
    assert select(GLUON_NAMES, "dense0", "full") == []
    assert select(GLUON_NAMES, "weight", "prefix") == []


def test_modes_are_labelled():
    """Each mode has a label that says which framework's behaviour it follows."""
    assert "collect_params" in MODE_LABELS[MatchMode.PREFIX]
    assert "filter" in MODE_LABELS[MatchMode.FULL]
    assert set(MODE_LABELS) == set(MatchMode)


@pytest.mark.timeout(10)
@pytest.mark.parametrize("mode", ["full", "prefix"])
def test_catastrophic_pattern_returns_at_once_on_deep_names(mode):
    """Issue 10 row 1: '(.|.)*X' on 30-deep names (Python's re: hours) selects nothing."""
    names = [f"{DEEP}.weight", f"{DEEP}.bias"] * 50
    assert select(names, "(.|.)*X", mode) == []


@pytest.mark.timeout(10)
def test_nested_stars_in_a_glob_return_at_once():
    """A glob of many stars on a long name that does not match is answered at once."""
    names = [f"{DEEP}.weight"] * 100
    assert select(names, "*0*0*0*0*0*0*0*0*0*0*0*0*X", "glob") == []
    assert select(names, "*0*0*?*0*0*[0]*0*0*0*0*0*0*X", "glob") == []


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"(a)\1", "backreferences"),
        (r"(?=weight).*", "lookahead"),
        (r"(?!bias).*", "lookahead"),
        (r"(?<=0\.)weight", "lookbehind"),
        ("(", "not a valid regular expression: a '(' is not closed"),
        ("a{1001}", "not a valid regular expression"),
    ],
)
def test_patterns_re2_refuses_are_clear_spec_errors(pattern, message):
    """What RE2 cannot run in linear time is a SpecError that says why, never a crash."""
    with pytest.raises(SpecError, match="filter: ") as err:
        compile_pattern(pattern, path="filter")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_length_cap_comes_from_limits():
    """A pattern longer than Limits.max_pattern_chars is refused, naming the cap."""
    limits = replace(DEFAULT_LIMITS, max_pattern_chars=10)
    compile_pattern("x" * 10, limits=limits)
    with pytest.raises(SpecError, match="at most 10 characters"):
        compile_pattern("x" * 11, limits=limits)


def test_non_text_and_unknown_modes_are_refused():
    """A pattern must be text, and the mode one of full, prefix, glob."""
    with pytest.raises(SpecError, match="must be a regular expression"):
        compile_pattern(3)
    with pytest.raises(SpecError, match="unknown match mode 'fuzzy'"):
        compile_pattern("a", "fuzzy")


def test_dots_in_a_glob_are_literal():
    """'0.*' selects block 0's parameters, not '01.weight'; '*.weight' needs the dot."""
    names = ["0.weight", "01.weight", "0.1.bias", "weight"]
    assert select(names, "0.*", "glob") == ["0.weight", "0.1.bias"]
    assert select(names, "*.weight", "glob") == ["0.weight", "01.weight"]


def test_rule_targets_use_the_same_patterns():
    """A rule's regex with match 'prefix' follows collect_params; a glob target follows fnmatch."""
    assert matches({"regex": "0\\.", "match": "prefix"}, "0.weight")
    assert not matches({"regex": "0\\."}, "0.weight")
    assert matches({"target": "*.bias"}, "2.bias")


def test_a_rule_with_a_backreference_is_refused_before_anything_runs():
    """check_rules names the rule and says the pattern needs backtracking."""
    with pytest.raises(SpecError, match=r"rules\[0\].regex: not supported: backreferences"):
        check_rules([{"init": "zeros", "regex": r"(\d)\1"}])
