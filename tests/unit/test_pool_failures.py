"""Why starts fail and when to try again: envscaler/pool/failures.py, without Docker."""

from __future__ import annotations

from envscaler.containers.failures import StartFailure, refusal
from envscaler.pool.failures import FailureBook, classify
from envscaler.pool.status import status_line


def test_a_container_killed_for_memory_is_named_so_with_its_limit() -> None:
    failure = classify({"Status": "exited", "OOMKilled": True, "ExitCode": 137}, "", 512 << 20)
    assert failure.reason == "oom"
    assert failure.describe("tau_airline") == "tau_airline: containers are killed for memory (512 MiB): raise " \
                                               "--memory-mb"
    # cgroup v2 engines sometimes miss the flag: exit 137 under a memory limit, or an `oom` event, says the same
    assert classify({"Status": "exited", "ExitCode": 137}, "", 64 << 20).reason == "oom"
    assert classify({"Status": "exited", "ExitCode": 1}, "", 64 << 20, oom_event=True).reason == "oom"


def test_other_deaths_keep_their_status_and_last_log_line() -> None:
    failure = classify({"Status": "exited", "ExitCode": 2}, "starting\nserve_bundle: cannot read /x: nope", 1 << 29)
    assert failure.reason == "exited"
    assert failure.describe("env_1") == "env_1: containers exit with status 2 before serving: serve_bundle: " \
                                        "cannot read /x: nope"
    assert classify({"Status": "exited", "ExitCode": 0}).describe("e").endswith("no output")
    assert classify({"Status": "running"}, detail="not serving after 60 s").reason == "not_ready"
    assert "no such image" in classify(None, detail="no such image").describe("e")


def test_a_refused_module_is_named_by_the_line_its_server_printed_in_one_line() -> None:
    logs = ("starting\nserve_bundle: env_t: the environment module failed to load: RuntimeError: the module is "
            "refused: it started 1 thread(s) at import; module-level code must not leave threads running\n  (they "
            "would see every later episode); health reports NOT_SERVING\nserving env_t (0 tools) on unix:/s\n")
    reason = refusal(logs)  # a message over two lines, as one
    assert reason == refusal(logs.replace("\n  (they", " (they"))
    assert reason.startswith("the environment module failed to load: RuntimeError: the module is refused: it "
                             "started 1 thread(s) at import") and reason.endswith("every later episode)")
    failure = StartFailure("refused", detail=reason)
    assert failure.describe("env_t") == f"env_t: containers refuse to serve it: {reason}"
    assert refusal("serving env_t (3 tools) on unix:/s") == ""


def test_backoff_doubles_marks_failing_and_a_served_start_clears_it() -> None:
    book = FailureBook(failing_after=2, base_delay=1.0, max_delay=8.0)
    oom = classify({"Status": "exited", "OOMKilled": True, "ExitCode": 137}, "", 32 << 20)
    assert book.may_start("env", 0.0) and book.failing("env") == ""
    assert book.failed("env", oom, 0.0) == 1.0
    assert not book.may_start("env", 0.5) and book.may_start("env", 1.0)
    assert book.failing("env") == ""  # one failure may be chance
    delays = [book.failed("env", oom, 0.0) for _ in range(5)]
    assert delays == [2.0, 4.0, 8.0, 8.0, 8.0]
    assert book.failing("env").startswith("env: containers are killed for memory (32 MiB): raise --memory-mb")
    assert "--size" not in book.failing("env")
    assert book.total("env") == 6 and book.reasons[("env", "oom")] == 6
    book.started("env")
    assert book.failing("env") == "" and book.last_cause("env") == "" and book.may_start("env", 0.0)
    assert book.total("env") == 6  # failed starts stay counted


def test_the_status_line_counts_failed_starts_and_names_the_cause() -> None:
    stats = {"size": 2, "containers": 0, "acquired": 0, "replaced": 0, "expired": 0,
             "envs": {"big": {"idle": 0, "leased": 0, "starting": 0, "failed": 3,
                              "failing": "big: containers are killed for memory (16 MiB): raise --memory-mb"}}}
    line = status_line(stats)
    assert "3 failed starts" in line and "failing: big: containers are killed for memory" in line
