"""What a caller makes of a call on an episode channel (envscaler/protocol/episode_channel.py): pure, no sockets."""

from __future__ import annotations

import math

from envscaler.protocol import episode_channel, framing
from envscaler.protocol.deadlines import Margin
from envscaler.v1 import env_pb2 as pb

CALL = pb.CallToolRequest(name="get_account", arguments_json="{}")


def _body(response: pb.SessionResponse) -> bytes:
    return response.SerializeToString()


def test_a_tool_answer_is_taken_and_the_channel_kept() -> None:
    answer = pb.SessionResponse(call_tool=pb.CallToolResponse(result_json="1", observation="1"))
    result = episode_channel.outcome(CALL, 10.0, body=_body(answer))
    assert result == episode_channel.Outcome(answer, keep=True)


def test_a_broken_episode_s_answer_ends_the_channel_without_a_report() -> None:
    answer = pb.SessionResponse(call_tool=pb.CallToolResponse(episode_broken=True))
    result = episode_channel.outcome(CALL, 10.0, body=_body(answer))
    assert result.answer == answer and result.report is None and not result.keep


def test_a_deadline_is_answered_as_the_server_words_it_and_reported() -> None:
    result = episode_channel.outcome(CALL, 2.5, failure="timeout")
    assert result.answer is not None and not result.keep
    assert result.answer.call_tool.error.kind == pb.DEADLINE_EXCEEDED and result.answer.call_tool.episode_broken
    message = "tool 'get_account' overran its 2.5 s deadline; the worker was killed"
    assert result.answer.call_tool.error.message == message
    assert result.report is not None
    assert (result.report.episode_channel.failed, result.report.episode_channel.overran_ms) == (pb.DEADLINE_EXCEEDED,
                                                                                               2500)


def test_what_no_channel_may_carry_is_the_worker_breaking_the_protocol() -> None:
    bodies = [b"\xff\xff", _body(pb.SessionResponse(evaluate=pb.EvaluateResponse(reward=1.0))), b"",
              _body(pb.SessionResponse(error=pb.SessionError(code=14, message="release this lease")))]
    for body in bodies:
        result = episode_channel.outcome(CALL, 10.0, body=body)
        assert result.answer is not None and result.answer.call_tool.error.kind == pb.PROTOCOL_ERROR, body
        assert result.report is not None and result.report.episode_channel.failed == pb.PROTOCOL_ERROR
        assert not result.keep
    over = episode_channel.outcome(CALL, 10.0, failure="too_large")
    assert over.answer is not None and over.answer.call_tool.error.kind == pb.PROTOCOL_ERROR


def test_the_refusals_a_worker_gives_pass_as_they_are() -> None:
    for code in episode_channel.WORKER_REFUSALS:
        answer = pb.SessionResponse(error=pb.SessionError(code=code, message="no"))
        assert episode_channel.outcome(CALL, 10.0, body=_body(answer)).answer == answer


def test_a_channel_that_ended_leaves_the_answer_to_the_server() -> None:
    assert episode_channel.outcome(CALL, 10.0, failure="eof") == episode_channel.Outcome(None)


def test_the_fallback_names_the_channel_s_episode_unless_the_call_named_one() -> None:
    assert episode_channel.for_episode(CALL, "e1").episode_id == "e1"
    named = pb.CallToolRequest(name="x", episode_id="e0")
    assert episode_channel.for_episode(named, "e1").episode_id == "e0"
    assert CALL.episode_id == ""  # not changed in place


def test_a_call_s_bound_is_its_own_timeout_within_the_caller_s_deadline() -> None:
    assert episode_channel.call_bound(CALL, math.inf, 10.0) == 10.0
    assert episode_channel.call_bound(pb.CallToolRequest(timeout_ms=1500), math.inf, 10.0) == 1.5
    assert episode_channel.call_bound(CALL, 3.0, 10.0) == 3.0 - Margin.ANSWER_FIRST.value


def test_the_server_s_answer_to_opening() -> None:
    opened = episode_channel.opened(_body(pb.SessionResponse(episode_channel=pb.EpisodeChannelResponse(
        episode_id="e", call_timeout_ms=10_000, max_frame_bytes=2**32 - 1))))
    assert isinstance(opened, episode_channel.Opened) and opened.call_timeout == 10.0
    assert opened.max_frame <= framing.MAX_FRAME
    old = pb.SessionResponse(error=pb.SessionError(code=3, message="empty envscaler.v1.SessionRequest"))
    assert episode_channel.opened(_body(old)) == "unsupported"
    taken = pb.SessionResponse(error=pb.SessionError(code=6, message="this episode already has its channel"))
    assert episode_channel.opened(_body(taken)) == "refused"
