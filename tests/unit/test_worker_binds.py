"""The worker's quick check that a call binds (envscaler/runtime/sandbox/worker.py: binds) never says yes where
inspect says
no."""

from __future__ import annotations

import inspect
import itertools
import random

from envscaler.runtime.sandbox.worker import binds

P = inspect.Parameter
KINDS = [P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY]


def _signatures(rng: random.Random) -> inspect.Signature:
    parameters: list[inspect.Parameter] = []
    kind_index = 0
    for name in rng.sample("abcdef", rng.randint(0, 4)):
        kind_index = rng.randint(kind_index, 2)
        kind = KINDS[kind_index]
        has_default = rng.random() < 0.4 or (parameters and parameters[-1].default is not P.empty
                                              and kind is not P.KEYWORD_ONLY)
        parameters.append(P(name, kind, default=0 if has_default else P.empty))
    if rng.random() < 0.3:
        parameters.append(P("kw", P.VAR_KEYWORD))
    return inspect.Signature(parameters)


def test_binds_is_sound_against_inspect() -> None:
    rng = random.Random(5)
    said_yes = 0
    for _ in range(3000):
        signature = _signatures(rng)
        names = rng.sample("abcdefz", rng.randint(0, 4))
        arguments = dict.fromkeys(names, 1)
        try:
            signature.bind(**arguments)
            bound = True
        except TypeError:
            bound = False
        if binds(signature, arguments):
            said_yes += 1
            assert bound, (signature, arguments)
    assert said_yes > 300  # and it answers most well-formed calls itself


def test_every_pair_of_small_cases() -> None:
    def f(a, b=1, *, c, **kw): ...
    signature = inspect.signature(f)
    for names in itertools.chain.from_iterable(itertools.combinations("abcz", n) for n in range(5)):
        arguments = dict.fromkeys(names, 1)
        if binds(signature, arguments):
            signature.bind(**arguments)
