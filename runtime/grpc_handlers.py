"""Service handlers that parse requests themselves, so a malformed request is an
INVALID_ARGUMENT naming the message, not an UNKNOWN with a logged traceback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError


def _problem(cls: Any, exc: Exception) -> str:
    return f"malformed {cls.DESCRIPTOR.full_name}: {exc}"


def _sync(impl: Callable[[Any, Any], Any], cls: Any) -> Callable[[bytes, grpc.ServicerContext], Any]:
    def handler(raw: bytes, context: grpc.ServicerContext) -> Any:
        try:
            request = cls.FromString(raw)
        except DecodeError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, _problem(cls, exc))
        return impl(request, context)

    return handler


def _async(impl: Callable[[Any, Any], Awaitable[Any]], cls: Any) -> Callable[[bytes, Any], Awaitable[Any]]:
    async def handler(raw: bytes, context: Any) -> Any:
        try:
            request = cls.FromString(raw)
        except DecodeError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, _problem(cls, exc))
        return await impl(request, context)

    return handler


def service_handler(service: ServiceDescriptor, servicer: object, asynchronous: bool) -> grpc.GenericRpcHandler:
    """Every unary method of `service`, implemented by the servicer's method of the same name."""
    handlers = {}
    for method in service.methods:
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        impl = getattr(servicer, method.name)
        wrap = _async if asynchronous else _sync
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            wrap(impl, request_cls), request_deserializer=None, response_serializer=response_cls.SerializeToString)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)
