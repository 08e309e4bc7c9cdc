"""Destination parsing and the folder cache's TTL."""

import pytest

from shared.graph.folders import Destination, FolderCache, parse_destination


def test_well_known_name_alone():
    assert parse_destination("archive") == Destination("archive", ())
    assert parse_destination("SentItems") == Destination("sentitems", ())


def test_path_under_a_well_known_folder_keeps_display_names():
    assert parse_destination("Inbox/Verwerkt/2026") == Destination("inbox", ("Verwerkt", "2026"))


def test_path_not_starting_at_a_well_known_folder_starts_at_the_root():
    assert parse_destination("/Projects/2026/") == Destination(
        "msgfolderroot", ("Projects", "2026")
    )


@pytest.mark.parametrize("bad", ["", "/", "Inbox//x", "a/\n/b", "x/" + "y" * 256])
def test_bad_paths_are_refused(bad):
    with pytest.raises(ValueError):
        parse_destination(bad)


def test_cache_key_ignores_case_of_names():
    assert parse_destination("Inbox/Verwerkt").key == parse_destination("inbox/verwerkt").key


def test_folder_cache_expires_after_ttl():
    now = [0.0]
    cache = FolderCache(ttl=10, clock=lambda: now[0])
    cache.put(("c", "m", "p"), "id1")
    now[0] = 9
    assert cache.get(("c", "m", "p")) == "id1"
    now[0] = 11
    assert cache.get(("c", "m", "p")) is None
