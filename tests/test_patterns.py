"""Name patterns: RE2 regexes (full or Gluon's prefix match) and globs, all in linear time."""

import fnmatch

from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.patterns import compile_pattern

GLOB_CHARS = st.sampled_from(list("ab.0*?[]!-"))
NAME_CHARS = st.sampled_from(list("ab.0-[]!"))


@settings(max_examples=500, deadline=None)
@given(st.text(GLOB_CHARS, max_size=8), st.text(NAME_CHARS, max_size=8))
def test_globs_match_exactly_what_fnmatch_matches(glob, name):
    """A glob selects a name exactly when fnmatch.fnmatchcase does (stars, ?, [sets], [!sets])."""
    assert compile_pattern(glob, "glob").matches(name) == fnmatch.fnmatchcase(name, glob)
