"""The read model failing is said in words (503), never a 500 page: unreachable or timing
out, and also answering with an error (out of memory, read-only replica, a key of the wrong
type), which an operator must hear about (logged with its traceback) but a person reading a
page need not see."""
from __future__ import annotations

import logging
from typing import Callable

import redis
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

log = logging.getLogger(__name__)


class ReadModelUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, redis.RedisError):
            return None
        unreachable = isinstance(exception, (redis.ConnectionError, redis.TimeoutError))
        if unreachable:
            log.warning("Read model unreachable while serving %s: %s", request.path, exception)
        else:
            log.error("Read model answered an error while serving %s", request.path, exc_info=exception)
        return render(request, "dashboard/unavailable.html", {"unreachable": unreachable}, status=503)
