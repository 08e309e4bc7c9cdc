"""make test's parallel run starts the longest modules first: each one it names still exists."""

from tests.conftest import LONGEST_FIRST, REPO


def test_every_module_started_first_exists_and_is_named_once():
    # A renamed module would quietly lose its place and could end up running alone at the end.
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
    assert [m for m in LONGEST_FIRST if not (REPO / m).is_file()] == []
