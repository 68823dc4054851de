"""The read model being unreachable is said in words (503), never a 500 page."""
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
        if not isinstance(exception, (redis.ConnectionError, redis.TimeoutError)):
            return None
        log.warning("Read model unreachable while serving %s: %s", request.path, exception)
        return render(request, "dashboard/unavailable.html", status=503)
