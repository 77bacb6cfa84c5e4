"""Service handlers that parse requests themselves, so a malformed request is an
INVALID_ARGUMENT naming the message, not an UNKNOWN with a logged traceback.

Servicer methods refuse a request by raising RequestError; a unary RPC ends with
its status, and a Session stream answers that one message with a SessionError
and stays open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError

from envscaler.v1 import env_pb2 as pb


class RequestError(Exception):
    """A refusal with its gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def session_methods(request_cls: Any) -> dict[str, str]:
    """A SessionRequest's fields by the RPC each stands for: call_tool -> CallTool."""
    fields = request_cls.DESCRIPTOR.oneofs_by_name["request"].fields
    return {f.name: "".join(part.title() for part in f.name.split("_")) for f in fields}


SESSION_METHODS = session_methods(pb.SessionRequest)


def session_kind(request: pb.SessionRequest | RequestError) -> str:
    """Which call a Session message makes; a malformed or empty one is a RequestError."""
    if isinstance(request, RequestError):
        # A fresh exception: raising the one held in `request` would tie it to its own traceback (a cycle that keeps
        # a large malformed frame alive until the garbage collector happens to run).
        raise RequestError(request.code, request.message)
    kind = request.WhichOneof("request")
    if kind is None:
        raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, "empty envscaler.v1.SessionRequest: set one of "
                                                             f"{', '.join(SESSION_METHODS)}")
    return kind


def session_error(code: grpc.StatusCode, message: str) -> pb.SessionResponse:
    """What a unary RPC would have ended with, as the answer to one Session message."""
    return pb.SessionResponse(error=pb.SessionError(code=code.value[0], message=message))


def internal_error(exc: BaseException) -> str:
    """A server-side failure, named for the caller (the request failed; the server goes on)."""
    return f"the server failed on this request ({type(exc).__name__}: {str(exc)[:200]}); it keeps serving"


def _problem(cls: Any, exc: Exception) -> str:
    return f"malformed {cls.DESCRIPTOR.full_name}: {exc}"


def parse(cls: Any, raw: bytes | bytearray) -> Any:
    try:
        return cls.FromString(raw)
    except DecodeError as exc:
        problem = _problem(cls, exc)
    raise RequestError(grpc.StatusCode.INVALID_ARGUMENT, problem)  # outside the handler: no context holding `raw`


def parse_each(cls: Any, raws: Iterator[bytes]) -> Iterator[Any]:
    """A stream's messages, with a RequestError in place of each malformed one."""
    for raw in raws:
        try:
            yield parse(cls, raw)
        except RequestError as exc:
            yield exc


async def parse_each_async(cls: Any, raws: AsyncIterator[bytes]) -> AsyncIterator[Any]:
    async for raw in raws:
        try:
            yield parse(cls, raw)
        except RequestError as exc:
            yield exc


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
        except grpc.RpcError:  # an abort already under way
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
    handlers = {}
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
