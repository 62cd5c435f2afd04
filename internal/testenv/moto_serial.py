# moto_server whose writes run one at a time.
#
# moto_server serves each request on its own thread (werkzeug, threaded=True), but moto's backends are plain
# dicts without locks. Under load the threads interleave inside them: a CreateSubnet that has already stored
# its subnet fails with "RuntimeError: dictionary changed size during iteration", moto answers 500, the SDK
# retries, and the retry gets InvalidSubnet.Conflict for the subnet the first attempt made (seen the same way
# for AttachInternetGateway and Resource.AlreadyAssociated). So a request that may change moto's state runs
# alone, and reads (GET, HEAD, and Describe*/List*/Get* actions) run alongside each other: serializing every
# request was measured at half moto's throughput.
import io
import sys
import threading
from urllib.parse import parse_qs

from moto import server
from moto.ec2.models.transit_gateway_route_tables import TransitGatewayRouteTableBackend
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

READ_ACTIONS = ("Describe", "List", "Get")


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers so it is not starved."""

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire(self, write):
        with self._cond:
            if write:
                self._writers_waiting += 1
                while self._writer or self._readers:
                    self._cond.wait()
                self._writers_waiting -= 1
                self._writer = True
            else:
                while self._writer or self._writers_waiting:
                    self._cond.wait()
                self._readers += 1

    def release(self, write):
        with self._cond:
            if write:
                self._writer = False
            else:
                self._readers -= 1
            self._cond.notify_all()


def is_read(environ):
    """Whether the request only reads. The body is read here and put back for moto."""
    method = environ.get("REQUEST_METHOD", "GET")
    if method in ("GET", "HEAD"):
        return True
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", [""])[0]
    if not action and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    if not action:  # JSON protocols name the operation in a header: "X-Amz-Target: Service.DescribeThing"
        action = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
    return action.startswith(READ_ACTIONS)


_lock = ReadWriteLock()
_call = DomainDispatcherApplication.__call__


def _locked(self, environ, start_response):
    write = not is_read(environ)
    _lock.acquire(write)
    try:
        # Consume the response under the lock too: a lazy body would read the backends after release.
        return list(_call(self, environ, start_response))
    finally:
        _lock.release(write)


DomainDispatcherApplication.__call__ = _locked
# moto 5.2 keeps a gateway route's attachment as one object where AWS's shape is a list
# (TransitGatewayRoute.TransitGatewayAttachments), so SearchTransitGatewayRoutes answers with an attachment
# the SDK does not read. The routes are answered in AWS's shape; moto's own model is left as it is.
_search_transit_gateway_routes = TransitGatewayRouteTableBackend.search_transit_gateway_routes


def search_transit_gateway_routes_as_aws(self, *args, **kwargs):
    routes = []
    for route in _search_transit_gateway_routes(self, *args, **kwargs):
        attachments = route.get("transitGatewayAttachments")
        if isinstance(attachments, dict):
            route = dict(route, transitGatewayAttachments=[attachments])
        routes.append(route)
    return routes


TransitGatewayRouteTableBackend.search_transit_gateway_routes = search_transit_gateway_routes_as_aws

server.main(sys.argv[1:])
