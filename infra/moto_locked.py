"""moto's server with one lock around each request: moto's transact_write_items copies and
restores whole tables, which races under its threaded server (lost writes, 500s). Real
DynamoDB has no such race, so the emulator serialises requests."""
import copy as _copy
import sys
import threading
import types


# moto 5.2.5's transact_write_items deep-copies a table once per item of the transaction (as a
# backup to restore on cancellation), so a 100-item transaction copies the table 100 times:
# slow, and it drives the emulator's memory to many GiB. The copies are identical (taken before
# any write), so one per table per transaction is the same backup. If moto's layout differs
# (another version), the patch is skipped and moto runs as shipped.
try:
    import moto.dynamodb.models as _models
    from moto.dynamodb.models.table import Table as _Table

    _once = {"on": False, "copies": {}}

    def _deepcopy(x, *a, **k):
        if _once["on"] and isinstance(x, _Table):
            if id(x) not in _once["copies"]:
                _once["copies"][id(x)] = _copy.deepcopy(x)
            return _once["copies"][id(x)]
        return _copy.deepcopy(x, *a, **k)

    _transact = _models.DynamoDBBackend.transact_write_items

    def _transact_once(self, items):
        _once["on"], _once["copies"] = True, {}
        try:
            return _transact(self, items)
        finally:
            _once["on"], _once["copies"] = False, {}

    if hasattr(_models, "copy"):
        _models.copy = types.SimpleNamespace(deepcopy=_deepcopy)
        _models.DynamoDBBackend.transact_write_items = _transact_once
except (ImportError, AttributeError):
    pass

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def locked(environ, start_response):
    with lock:
        return list(app(environ, start_response))


run_simple("127.0.0.1", int(sys.argv[1]), locked, threaded=True, request_handler=MotoRequestHandler)
