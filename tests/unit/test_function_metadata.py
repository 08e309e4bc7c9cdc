"""The functions index the way the Functions host indexes them (azure-functions metadata)."""

import json

import function_app

EXPECTED = {
    "send_mail": ("mail/send", ["POST"], "FUNCTION"),
    "move_mail": ("mail/move", ["POST"], "FUNCTION"),
    "create_draft": ("mail/draft", ["POST"], "FUNCTION"),
    "reply_mail": ("mail/reply", ["POST"], "FUNCTION"),
    "forward_mail": ("mail/forward", ["POST"], "FUNCTION"),
    "export_mail": ("mail/export", ["POST"], "FUNCTION"),
    "health": ("health", ["GET"], "ANONYMOUS"),
    "openapi": ("openapi.json", ["GET"], "ANONYMOUS"),
}


# get_functions() validates name uniqueness against what it saw before, so a second call in one
# process raises; index once, like the host does.
FUNCTIONS = function_app.app.get_functions()


def http_functions():
    functions = FUNCTIONS
    out = {}
    for fn in functions:
        bindings = [json.loads(b) for b in fn.get_raw_bindings()]
        out[fn.get_function_name()] = (fn, bindings)
    return functions, out


def test_function_names_are_unique_and_all_expected_are_there():
    functions, _by_name = http_functions()
    names = [fn.get_function_name() for fn in functions]
    assert len(names) == len(set(names))
    assert set(EXPECTED) <= set(names)


def test_http_triggers_have_their_routes_methods_and_auth_levels():
    _, by_name = http_functions()
    for name, (route, methods, auth) in EXPECTED.items():
        _fn, bindings = by_name[name]
        trigger = next(b for b in bindings if b["direction"] == "IN")
        assert trigger["type"] == "httpTrigger", name
        assert trigger["route"] == route and trigger["methods"] == methods, name
        assert trigger["authLevel"] == auth, name
        assert trigger["name"] == "req"
        outputs = [b for b in bindings if b["direction"] == "OUT"]
        assert outputs == [{"direction": "OUT", "type": "http", "name": "$return"}], name


def test_routes_do_not_collide():
    _, by_name = http_functions()
    keys = []
    for _fn, bindings in by_name.values():
        for b in bindings:
            if b["type"] == "httpTrigger":
                keys += [(m, b["route"]) for m in b["methods"]]
    assert len(keys) == len(set(keys))


def test_function_json_is_what_the_host_reads(repo_root):
    fn = FUNCTIONS[0]
    as_json = json.loads(fn.get_function_json())
    assert as_json["scriptFile"] == "function_app.py"
    assert as_json["bindings"][0]["type"] == "httpTrigger"


def test_host_json_pins_the_bundle_and_queue_settings(repo_root):
    host = json.loads((repo_root / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    queues = host["extensions"]["queues"]
    assert queues["maxDequeueCount"] == 5
    assert {"batchSize", "visibilityTimeout", "maxPollingInterval"} <= set(queues)
    assert host["extensions"]["http"]["routePrefix"] == "api"


def test_every_http_function_is_async_on_the_http_streams_types():
    """function_app imports the web extension, so the worker serves every HTTP trigger on HTTP
    streams: each must take the extension's Request and answer a Response, and be async (the
    blocking work goes to threads; shared.api.http)."""
    import inspect

    from devhost.streams_mode import check_http_signature, http_streams_enabled

    assert http_streams_enabled({"PYTHON_ENABLE_INIT_INDEXING": "1"})
    http = [f for f in FUNCTIONS if f.get_trigger().get_binding_name() == "httpTrigger"]
    assert len(http) >= len(EXPECTED)
    for fn in http:
        user = fn.get_user_function()
        assert inspect.iscoroutinefunction(user), fn.get_function_name()
        check_http_signature(fn.get_function_name(), user, fn.get_trigger().name, streams=True)
