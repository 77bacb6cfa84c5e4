"""The trusted side of the server <-> worker wire (proto/envscaler/v1/worker.proto): requests built with the generated
classes, and the ONE decoder of what the sandbox answers.

A reply comes from code of the environment (the zygote and its workers run it), so `read_reply` takes nothing
outside the closed set: bytes that are not a WorkerReply, a member the request did not call for, an unknown field,
a failure of a kind that is not one of proto's ErrorKinds: each is a FrameError("protocol") naming what is wrong,
which the supervisor reports as PROTOCOL_ERROR (and ends the worker). tests/unit/test_worker_wire.py feeds it
arbitrary bytes and well-formed-but-wrong messages.
"""

from __future__ import annotations

from typing import Literal, cast

from google.protobuf import unknown_fields
from google.protobuf.message import DecodeError, Message

from envscaler.protocol.framing import FrameError
from envscaler.runtime.messages import WORKER_KINDS, WorkerKind
from envscaler.v1 import env_pb2 as pb
from envscaler.v1 import worker_pb2 as wpb

ReplyKind = Literal["done", "failure", "spawned", "reaped", "state", "result", "check"]
Request = wpb.WorkerRequest
Reply = wpb.WorkerReply


def _unknown(message: Message) -> bool:
    """Whether `message`, or any message set in it, carries a field the wire does not define."""
    if len(unknown_fields.UnknownFieldSet(message)):
        return True
    return any(_unknown(value) for field, value in message.ListFields() if field.message_type is not None)


def _kind_known(failure: wpb.WorkerFailure) -> str:
    name = pb.ErrorKind.Name(failure.kind) if failure.kind in pb.ErrorKind.values() else ""
    return "" if name in WORKER_KINDS else f"a failure of an unknown kind ({failure.kind})"


def read_reply(body: bytes | bytearray, expect: tuple[ReplyKind, ...]) -> Reply:
    """The sandbox's reply to a request that calls for one of `expect` (a failure is always a valid answer)."""
    try:
        reply = wpb.WorkerReply.FromString(bytes(body))
    except DecodeError as exc:
        raise FrameError("protocol", f"a reply that is not a WorkerReply ({exc})") from None
    kind = reply.WhichOneof("reply")
    if kind is None:
        raise FrameError("protocol", "an empty WorkerReply")
    if _unknown(reply):
        raise FrameError("protocol", f"a {kind} reply with a field the wire does not define")
    if kind != "failure" and kind not in expect:
        raise FrameError("protocol", f"a {kind} reply where {' or '.join(expect) or 'none'} was due")
    problem = _kind_known(reply.failure) if kind == "failure" else \
        _kind_known(reply.state.state_error) if kind == "state" and reply.state.HasField("state_error") else ""
    if problem:
        raise FrameError("protocol", problem)
    return reply


def failure_of(failure: wpb.WorkerFailure) -> tuple[WorkerKind, str]:
    """A failure's kind (checked by read_reply) and message."""
    return cast(WorkerKind, pb.ErrorKind.Name(failure.kind)), failure.message


def to_pb(failure: wpb.WorkerFailure) -> pb.ToolError:
    return pb.ToolError(kind=failure.kind, message=failure.message)


def encode(request: Request) -> bytes:
    return request.SerializeToString()
