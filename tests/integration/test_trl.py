"""Real GRPOTrainer training steps on CPU whose rewards are sandboxed scenarios' checks, through a real pool.

The model is built here from a config (random weights) with a tokenizer trained here on a few strings: nothing is
downloaded. Its decoding is constrained to a small grammar (one of four tool calls, or the end of its turn), so
random weights still call the bank environment's tools; which calls it makes is its own sampling, so rewards vary
within a group and the loss has something to learn from.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LogitsProcessor, LogitsProcessorList, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
from trl import GRPOConfig, GRPOTrainer
from trl.chat_template_utils import qwen3_chat_template

from envscaler.integrations.common import IntegrationError
from envscaler.integrations.trl import PoolEnvironment, PoolToolEnv, sandboxed_checks
from envscaler.pool.runner import LocalPool, PoolOptions

pytestmark = pytest.mark.integration
os.environ["HF_HUB_OFFLINE"] = "1"  # nothing from a hub: a test that tried would fail, not download

ENV, FROZEN, OTHER = "env_4", "0502-113020", "0502-142201"  # freeze AC-200 + limit 200; an unrelated task
CALLS = [  # what the model can say: two halves of the FROZEN task, a wrong account, an argument the sandbox refuses
    ("freeze_account", {"account_id": "AC-200", "reason": "card stolen"}),
    ("set_withdrawal_limit", {"account_id": "AC-200", "limit": 200}),
    ("freeze_account", {"account_id": "AC-100", "reason": "card stolen"}),
    ("set_withdrawal_limit", {"account_id": "AC-200", "limit": "two hundred"}),
]
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>",
           "<tool_response>", "</tool_response>"]


def call_text(name: str, arguments: dict[str, Any]) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def tiny_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """Byte-level BPE (any text encodes), trained on the calls and `texts` so that they take few tokens; Qwen3's
    chat template, which TRL knows how to parse tool calls from."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([json.dumps({"name": n, "arguments": a}) for n, a in CALLS] * 20 + texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL[1:])
    fast.chat_template = qwen3_chat_template
    fast.padding_side = "left"
    return fast


def allowed_next(generated: list[int], sequences: list[list[int]], eos: int) -> set[int]:
    """The grammar: whole calls, one after another, then the end of the turn."""
    position = 0
    while position < len(generated):
        whole = next((s for s in sequences if generated[position:position + len(s)] == s), None)
        if whole is None:
            prefix = generated[position:]
            return {s[len(prefix)] for s in sequences if s[:len(prefix)] == prefix} or {eos}
        position += len(whole)
    return {s[0] for s in sequences} | {eos}


class CallGrammar(LogitsProcessor):
    def __init__(self, start: int, sequences: list[list[int]], eos: int) -> None:
        self.start, self.sequences, self.eos = start, sequences, eos

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        mask = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            mask[row, sorted(allowed_next(input_ids[row, self.start:].tolist(), self.sequences, self.eos))] = 0
        return scores + mask


class ConstrainedQwen(Qwen2ForCausalLM):
    """A tiny Qwen2 whose sampling is confined to the grammar (the model's own logits choose within it)."""

    call_sequences: list[list[int]] = []

    def generate(self, input_ids: torch.Tensor | None = None, **kwargs: Any) -> Any:
        assert input_ids is not None
        grammar = CallGrammar(input_ids.shape[1], self.call_sequences, int(self.config.eos_token_id))
        return super().generate(input_ids=input_ids, logits_processor=LogitsProcessorList([grammar]), **kwargs)


@pytest.fixture(scope="module")
def bank_pool(engine: docker.DockerClient, runtime_image: str) -> Iterator[LocalPool]:
    with LocalPool(options=PoolOptions(size=4, only=[ENV], acquire_wait=300)) as local:
        yield local


def replayed_reward(local: LocalPool, scenario: str, calls: list[tuple[str, dict[str, Any]]]) -> float:
    """The same calls in a fresh lease, scored by the pool's Evaluate: what the trainer's reward must be."""
    with local.pool.session(ENV, scenario) as session:
        for name, arguments in calls:
            session.call(name, arguments)
        return session.evaluate().reward


def test_grpo_trains_on_sandboxed_rewards(bank_pool: LocalPool, tmp_path: Any) -> None:
    with PoolEnvironment(bank_pool.pool, ENV) as environment:
        dataset = environment.dataset([FROZEN], repeat=12)
        methods = [getattr(environment(), t["function"]["name"]) for t in environment.info.tools]
        # the prompt as TRL renders it (system prompt, tool schemas), so that it too takes few tokens
        rendered = tiny_tokenizer([]).apply_chat_template(dataset[0]["prompt"], tools=methods, tokenize=False)
    tokenizer = tiny_tokenizer([rendered] * 5)
    ConstrainedQwen.call_sequences = [tokenizer(call_text(n, a), add_special_tokens=False)["input_ids"]
                                      for n, a in CALLS]
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=True)
    model = ConstrainedQwen(config)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    seen: list[tuple[str, list[tuple[str, dict[str, Any]]], float | None]] = []

    def recorded(environments: list[PoolToolEnv], **kwargs: Any) -> list[float | None]:
        rewards = sandboxed_checks(environments, **kwargs)
        seen.extend((e.scenario_id, [(c.name, c.arguments) for c in e.calls], r)
                    for e, r in zip(environments, rewards, strict=True))
        return rewards

    recorded.__name__ = "sandboxed_checks"
    with PoolEnvironment(bank_pool.pool, ENV) as environment:
        args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=4, max_steps=3,
                          max_completion_length=512, learning_rate=1e-2, logging_steps=1, report_to="none",
                          use_cpu=True, save_strategy="no", seed=0, max_tool_calling_iterations=3)
        trainer = GRPOTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                              environment_factory=environment, reward_funcs=recorded)
        trainer.train()

    steps = [h for h in trainer.state.log_history if "loss" in h]
    assert len(steps) == 3 and all(math.isfinite(h["loss"]) for h in steps)
    assert any(h["grad_norm"] > 0 for h in steps)  # a group's rewards differed: the loss had a gradient
    assert len(seen) == 12 and all(reward is not None for *_, reward in seen)
    rewards = [reward for *_, reward in seen]
    assert any(r > 0 for r in rewards) and len(set(rewards)) > 1, seen  # some solved, not all alike
    assert any(calls for _, calls, _ in seen)
    for scenario, calls, reward in seen:  # each reward is the sandbox's verdict on the calls the model made
        assert reward == replayed_reward(bank_pool, scenario, calls), (scenario, calls)
    assert any(not torch.equal(before[name], p) for name, p in model.named_parameters())  # the step moved weights
    assert bank_pool.pool.stats().envs[0].leased == 0  # every lease went back


def test_tool_schemas_reach_trl_as_the_sandbox_serves_them(bank_pool: LocalPool) -> None:
    from transformers.utils import get_json_schema

    with PoolEnvironment(bank_pool.pool, ENV) as environment:
        tools = {t["function"]["name"]: t["function"] for t in environment.info.tools}
        instance = environment()
        for name, served in tools.items():
            rendered = get_json_schema(getattr(instance, name))["function"]
            assert rendered["name"] == name
            assert set(rendered["parameters"]["properties"]) == set(served["parameters"].get("properties", {}))
            assert set(rendered["parameters"].get("required", [])) == set(served["parameters"].get("required", []))
        with pytest.raises(IntegrationError, match="needs a 'scenario' column"):
            instance.reset(prompt=[])
        with pytest.raises(IntegrationError, match="no scenario 'nope'"):
            environment.dataset(["nope"])

