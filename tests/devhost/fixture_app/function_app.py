"""A small function app for the devhost's own tests (independent of the product's app)."""

import json
import os
import threading
import time
from datetime import UTC, datetime

import azure.functions as func

# Read at import time on purpose: proves local.settings.json is applied before the import.
SETTING_AT_IMPORT = os.environ.get("FIXTURE_SETTING", "<unset>")
_barrier = threading.Barrier(2, timeout=10)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


def _json(data: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(data), status_code=status, mimetype="application/json")


@app.route(route="hello/{name}", methods=["GET"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return _json(
        {
            "name": req.route_params.get("name"),
            "params": dict(req.params),
            "method": req.method,
            "url": req.url,
            "settingAtImport": SETTING_AT_IMPORT,
        }
    )


@app.route(route="items/{id:int}", methods=["GET", "DELETE"])
def items(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"id": int(req.route_params["id"]), "method": req.method})


@app.route(route="items/new", methods=["POST"])
def new_item(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"created": True}, 201)


@app.route(route="public", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def public(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("ok", headers={"X-Fixture": "yes"})


@app.route(route="admin", auth_level=func.AuthLevel.ADMIN)
def admin(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin")


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("fixture-internal-detail-do-not-leak")


@app.route(route="echo", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        req.get_body(),
        status_code=202,
        mimetype=req.headers.get("content-type", "application/octet-stream"),
    )


@app.route(route="together", methods=["GET"])
def together(req: func.HttpRequest) -> func.HttpResponse:
    # Only returns 200 when two requests are inside the function at the same time.
    try:
        _barrier.wait()
    except threading.BrokenBarrierError:
        return func.HttpResponse("alone", status_code=409)
    return func.HttpResponse("together")


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="out", queue_name="work", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode())
    return func.HttpResponse(status_code=202)


@app.queue_trigger(arg_name="msg", queue_name="work", connection="AzureWebJobsStorage")
def record(msg: func.QueueMessage) -> None:
    """Record every delivery; fail the first `failTimes` deliveries; hang on the first if asked."""
    body = msg.get_body()
    entry = {
        "id": msg.id,
        "body": body.decode("latin-1"),
        "dequeueCount": msg.dequeue_count,
        "insertionTime": msg.insertion_time.isoformat() if msg.insertion_time else None,
        "expirationTime": msg.expiration_time.isoformat() if msg.expiration_time else None,
        "popReceipt": msg.pop_receipt,
    }
    with open(os.environ["FIXTURE_RECORD_FILE"], "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
    try:
        spec = json.loads(body)
    except ValueError:
        return
    if not isinstance(spec, dict):
        return
    if spec.get("hang") and msg.dequeue_count == 1:
        time.sleep(120)  # the test kills the devhost meanwhile
    if msg.dequeue_count <= int(spec.get("failTimes", 0)):
        raise RuntimeError(f"failing on purpose (delivery {msg.dequeue_count})")


def _record_tick(name: str, timer: func.TimerRequest) -> None:
    with open(os.environ["FIXTURE_TIMER_FILE"], "a", encoding="utf-8") as fh:
        entry = {
            "function": name,
            "pastDue": timer.past_due,
            "scheduleStatus": timer.schedule_status,
            "at": datetime.now(UTC).isoformat(),
        }
        fh.write(json.dumps(entry) + "\n")


# The schedule comes from an app setting, as the host allows (%NAME%).
@app.timer_trigger(arg_name="timer", schedule="%FIXTURE_TICK_SCHEDULE%", use_monitor=False)
def tick(timer: func.TimerRequest) -> None:
    _record_tick("tick", timer)


# Once a year, so in a test it only ever runs because of run_on_startup.
@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
def at_startup(timer: func.TimerRequest) -> None:
    _record_tick("at_startup", timer)


# Like operations_cleanup: daily, monitored, so a run missed while the host was down catches up.
@app.timer_trigger(arg_name="timer", schedule="0 30 3 * * *")
def nightly(timer: func.TimerRequest) -> None:
    _record_tick("nightly", timer)
