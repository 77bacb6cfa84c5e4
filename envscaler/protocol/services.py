"""gRPC service handlers that parse requests themselves, so a malformed request is an INVALID_ARGUMENT naming
the message, not an UNKNOWN with a logged traceback. Servicer methods refuse a request by raising RequestError;
a unary RPC ends with its status, and a Session stream answers that one message and stays open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor

from envscaler.protocol.sessions import RequestError, internal_error, parse, parse_each, parse_each_async


def _sync(impl: Callable[[Any, Any], Any], cls: Any) -> Callable[[bytes, grpc.ServicerContext], Any]:
    def handler(raw: bytes, context: grpc.ServicerContext) -> Any:
        try:
            return impl(parse(cls, raw), context)
        except RequestError as exc:
            context.abort(exc.code, exc.message)
        except Exception as exc:  # never a traceback: this call alone fails, with what went wrong
            context.abort(grpc.StatusCode.INTERNAL, internal_error(exc))

    return handler


def _async(impl: Callable[[Any, Any], Awaitable[Any]], cls: Any) -> Callable[[bytes, Any], Awaitable[Any]]:
    async def handler(raw: bytes, context: Any) -> Any:
        try:
            return await impl(parse(cls, raw), context)
        except RequestError as exc:
            await context.abort(exc.code, exc.message)
        except (grpc.RpcError, grpc.aio.AbortError):  # an abort already under way (the servicer's own)
            raise
        except Exception as exc:
            await context.abort(grpc.StatusCode.INTERNAL, internal_error(exc))

    return handler


def _sync_stream(impl: Callable[[Any, Any], Iterator[Any]], cls: Any) -> Callable[[Iterator[bytes], Any], Any]:
    def handler(raws: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from impl(parse_each(cls, raws), context)
        except RequestError as exc:
            context.abort(exc.code, exc.message)

    return handler


def _async_stream(impl: Callable[[Any, Any], AsyncIterator[Any]], cls: Any) -> Callable[[Any, Any], Any]:
    async def handler(raws: AsyncIterator[bytes], context: Any) -> AsyncIterator[Any]:
        try:
            async for response in impl(parse_each_async(cls, raws), context):
                yield response
        except RequestError as exc:
            await context.abort(exc.code, exc.message)

    return handler


def service_handler(service: ServiceDescriptor, servicer: object, asynchronous: bool) -> grpc.GenericRpcHandler:
    """Every method of `service` (unary, or bidi streams), implemented by the servicer's method of the same name."""
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        impl = getattr(servicer, method.name)
        if method.client_streaming and method.server_streaming:
            wrap_stream = _async_stream if asynchronous else _sync_stream
            handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                wrap_stream(impl, request_cls), request_deserializer=None,
                response_serializer=response_cls.SerializeToString)
            continue
        wrap = _async if asynchronous else _sync
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            wrap(impl, request_cls), request_deserializer=None, response_serializer=response_cls.SerializeToString)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)

