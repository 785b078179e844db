"""moto's server with one lock around each request: moto's transact_write_items copies and
restores whole tables, which races under its threaded server (lost writes, 500s). Real
DynamoDB has no such race, so the emulator serialises requests."""
import sys
import threading

from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()


def locked(environ, start_response):
    with lock:
        return list(app(environ, start_response))


run_simple("127.0.0.1", int(sys.argv[1]), locked, threaded=True, request_handler=MotoRequestHandler)
