"""A local OpenAI-compatible chat server that plays scripted turns, for tests.

The real `openai` client talks to it over HTTP. A conversation is matched to its
script by a key (a substring of its first user-side message); the turn played is
the number of assistant turns already in the conversation.

Turn forms:
    {"tool_calls": [["name", "<raw JSON arguments>"], ...]}   tool calls, in order
    {"content": "text"}                                        a text reply
    {"content": "...", "finish_reason": "length"}              an overlong, cut reply
    {"status": 500, "times": 1, "then": {...}}                 fail `times` times, then play `then`

Or pass `respond(messages) -> turn`, to answer from the prompt itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Turn = dict[str, Any]


class ScriptedLLM:
    def __init__(self, agent: dict[str, list[Turn]] | None = None, users: dict[str, list[str]] | None = None,
                 delay: float = 0.0, respond: Callable[[list[dict[str, Any]]], Turn | None] | None = None) -> None:
        self.agent, self.users, self.delay, self.respond = agent or {}, users or {}, delay, respond
        self.requests: list[dict[str, Any]] = []
        self.failures: Counter[tuple[str, int]] = Counter()
        self.lock = threading.Lock()
        llm = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload = llm.embed(body) if self.path.endswith("/embeddings") else llm.answer(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *_: None  # type: ignore[method-assign]  # clients that hang up early
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> ScriptedLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _script(self, messages: list[dict[str, Any]]) -> tuple[str, list[Any], int]:
        system = messages[0].get("content", "") if messages else ""
        if system.startswith("You are playing a user"):
            key = next((k for k in self.users if k in system), "")
            return key, self.users.get(key, []), sum(m["role"] == "assistant" for m in messages)
        user_side = " ".join(m.get("content") or "" for m in messages if m["role"] == "user")
        key = next((k for k in self.agent if k in user_side), "")
        turns = sum(m["role"] == "assistant" for m in messages)
        if messages[1:2] and messages[1]["role"] == "assistant" and not messages[1].get("tool_calls"):
            turns -= 1  # the conversational greeting is not a scripted turn
        return key, self.agent.get(key, []), turns

    def embed(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Bag-of-words vectors: texts sharing words are close, as real embeddings would be."""
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vocabulary = sorted({w for t in texts for w in t.lower().split()})
        data = [{"object": "embedding", "index": i,
                 "embedding": [float(t.lower().split().count(w)) for w in vocabulary]} for i, t in enumerate(texts)]
        return 200, {"object": "list", "data": data, "model": body.get("model", "embed"),
                     "usage": {"prompt_tokens": 1, "total_tokens": 1}}

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append(body)
        if self.delay:
            time.sleep(self.delay)
        if self.respond is not None:
            scripted = self.respond(body.get("messages", []))
            if scripted is not None and "status" in scripted:  # respond() may fail a request too
                return scripted["status"], {"error": {"message": "scripted failure", "type": "server_error"}}
            if scripted is not None:
                return 200, completion(body, scripted)
        key, script, index = self._script(body.get("messages", []))
        turn: Any = script[index] if index < len(script) else {"content": "Task Completed"}
        if isinstance(turn, str):  # a user-simulator line
            return 200, completion(body, {"content": turn})
        while "status" in turn:
            with self.lock:
                self.failures[(key, index)] += 1
                failed = self.failures[(key, index)]
            if failed <= turn.get("times", 1):
                return turn["status"], {"error": {"message": "scripted failure", "type": "server_error"}}
            turn = turn["then"]
        return 200, completion(body, turn)


def completion(body: dict[str, Any], turn: Turn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.get("content")}
    finish = turn.get("finish_reason", "stop")
    if turn.get("tool_calls"):
        message["tool_calls"] = [{"id": f"call_{i}_{abs(hash(args)) % 10**8}", "type": "function",
                                  "function": {"name": name, "arguments": args}}
                                 for i, (name, args) in enumerate(turn["tool_calls"])]
        finish = "tool_calls"
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}
