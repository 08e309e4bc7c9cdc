"""Route templates compile to matchers that behave like the Functions host's routing."""

import pytest

from devhost.routes import RouteError, compile_route


def test_literal_route_matches_only_itself_case_insensitively():
    route = compile_route("mail/send")
    assert route.match("mail/send") == {}
    assert route.match("Mail/Send") == {}
    assert route.match("mail/send/x") is None
    assert route.match("mail") is None


def test_parameter_is_captured_and_url_decoded():
    route = compile_route("operations/{operationId}")
    assert route.params == ("operationId",)
    assert route.match("operations/abc%20def") == {"operationId": "abc def"}
    assert route.match("operations/") is None
    assert route.match("operations/a/b") is None


def test_int_constraint_rejects_non_numbers():
    route = compile_route("items/{id:int}")
    assert route.match("items/42") == {"id": "42"}
    assert route.match("items/abc") is None


def test_guid_constraint_accepts_only_guids():
    route = compile_route("ops/{id:guid}")
    assert route.match("ops/8f3c1a52-0000-4000-8000-00000000c0de")
    assert route.match("ops/not-a-guid") is None


def test_optional_parameter_may_be_left_out_with_its_slash():
    route = compile_route("auth/{connection}/{step?}")
    assert route.match("auth/contoso/login") == {"connection": "contoso", "step": "login"}
    assert route.match("auth/contoso") == {"connection": "contoso"}


def test_catch_all_parameter_takes_the_rest_of_the_path():
    route = compile_route("files/{*path}")
    assert route.match("files/a/b/c.txt") == {"path": "a/b/c.txt"}


def test_several_parameters_in_one_template():
    route = compile_route("auth/{connection}/callback/{user}")
    assert route.match("auth/c1/callback/u1") == {"connection": "c1", "user": "u1"}


def test_duplicate_parameter_is_refused():
    with pytest.raises(RouteError, match="twice"):
        compile_route("a/{x}/{x}")


def test_unbalanced_braces_are_refused():
    with pytest.raises(RouteError, match="unbalanced"):
        compile_route("a/{x")
