"""Generators: the transformers backend on a tiny random model, the scripted fake, the factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import ScriptedGenerator

from qa.generation import (
    Choice,
    Generation,
    LlamaCppGenerator,
    TransformersGenerator,
    create_generator,
    generate,
)
from qa.prompts import answer_messages
from qa.settings import GenerationSettings, load_settings
from qa.signals import judged

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} <|end|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def _tiny_model(folder: Path) -> Path:
    """A randomly initialised 2-layer Qwen2 model and a word-level tokenizer, built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    words = ["<unk>", "<pad>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
    words += [
        "the",
        "a",
        "of",
        "to",
        "and",
        "in",
        "is",
        "was",
        "by",
        "for",
        "cde",
        "drug",
        "mesutoclax",
        "question",
        "passages",
        "answer",
    ]
    words += [f"[{i}]" for i in range(1, 10)] + [str(i) for i in range(10)]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", eos_token="<|end|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    config = Qwen2Config(
        vocab_size=len(words),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        eos_token_id=2,
        pad_token_id=1,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


def test_transformers_backend_streams_from_a_local_folder(tmp_path: Path) -> None:
    folder = _tiny_model(tmp_path / "tiny")
    settings = GenerationSettings(backend="transformers", model=str(folder), n_threads=1)
    generator = create_generator(settings, tmp_path)
    assert isinstance(generator, TransformersGenerator)
    items = list(generator.stream(answer_messages("who granted it ?", [("", "the cde granted it")]), max_tokens=6))
    *pieces, final = items
    assert all(isinstance(p, str) for p in pieces)
    assert isinstance(final, Generation)
    assert final.text == "".join(str(p) for p in pieces)
    assert final.stats.prompt_tokens > 5
    assert final.stats.completion_tokens == len(pieces) <= 6


def test_transformers_backend_missing_folder_is_clear(tmp_path: Path) -> None:
    settings = GenerationSettings(backend="transformers", model=str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_generator(settings, tmp_path).warm_up()


def test_factory_defaults_to_llama_cpp_without_loading(tmp_path: Path) -> None:
    generator = create_generator(load_settings(environ={}).generation, tmp_path)
    assert isinstance(generator, LlamaCppGenerator)
    assert generator._llm is None  # nothing loaded until warm_up()


def test_scripted_generator_honours_max_tokens() -> None:
    generator = ScriptedGenerator(lambda m: "one two three four")
    result = generate(generator, [], max_tokens=2)
    assert result.text == "one two" and result.stats.completion_tokens == 2


@pytest.mark.integration
def test_llama_cpp_answers_from_the_passage_and_reuses_the_prefix(tmp_path: Path) -> None:
    settings = load_settings()
    generator = create_generator(settings.generation, settings.paths.cache)
    passages = [("", "Mesutoclax received Breakthrough Therapy Designation from the Center for Drug Evaluation.")]
    first = generate(generator, answer_messages("Which agency granted the designation?", passages), max_tokens=24)
    assert "Center for Drug Evaluation" in first.text
    assert generator.model_sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    second = generate(generator, answer_messages("Who granted it?", passages), max_tokens=8)
    assert second.stats.prompt_seconds < first.stats.prompt_seconds  # the fixed prefix came from the KV cache
    system = generator.count_tokens(answer_messages("", [])[0]["content"])
    assert system < second.stats.cached_tokens < second.stats.prompt_tokens  # system turn and passages reused
    assert first.stats.cached_tokens < system  # the first call had nothing of this prompt cached


@pytest.mark.integration
def test_llama_cpp_decoding_matches_its_chat_completion_and_gives_probabilities() -> None:
    import math

    settings = load_settings(preset="fast")
    generator = create_generator(settings.generation, settings.paths.cache)
    assert isinstance(generator, LlamaCppGenerator)
    messages = answer_messages("Who is the CEO of InnoCare?", [("", "InnoCare develops mesutoclax in China.")])
    result = generate(generator, messages, max_tokens=24)
    reference = generator._llm.create_chat_completion(messages=messages, temperature=0.0, top_k=1, max_tokens=24)
    assert result.text == reference["choices"][0]["message"]["content"]
    assert len(result.token_logprobs) == result.stats.completion_tokens > 0
    assert all(lp <= 0.0 for lp in result.token_logprobs)
    assert len(result.first_choices) == 5
    probabilities = [math.exp(lp) for _, lp in result.first_choices]
    assert probabilities == sorted(probabilities, reverse=True) and sum(probabilities) <= 1.0 + 1e-6
    assert math.isclose(result.first_choices[0][1], result.token_logprobs[0])  # greedy: the top choice was taken


@pytest.mark.integration
def test_llama_cpp_choice_reranks_the_first_label_and_decodes_on_from_it() -> None:
    settings = load_settings()
    generator = create_generator(settings.generation, settings.paths.cache)
    passages = [("", "Mesutoclax received Breakthrough Therapy Designation from the CDE in 2025.")]
    messages = answer_messages("Did mesutoclax receive Breakthrough Therapy Designation?", passages, yes_no=True)
    plain = generate(generator, messages, max_tokens=12, choice=Choice(("Yes", "No")))
    assert plain.text.startswith("Yes")  # the model's own choice, unchanged without a bias
    assert len(plain.label_logprobs) == 2 and plain.label_logprobs[0] > plain.label_logprobs[1]
    forced = generate(generator, messages, max_tokens=12, choice=Choice(("Yes", "No"), bias=(100.0, 0.0)))
    assert forced.text.startswith("No")
    # the same first step (a cached prefix computes it in other batches, so it may drift a little)
    assert forced.label_logprobs == pytest.approx(plain.label_logprobs, abs=0.3)
    assert forced.token_logprobs[0] == forced.label_logprobs[1]
    assert len(forced.text.split()) > 1 and len(forced.token_logprobs) == forced.stats.completion_tokens > 1
    assert set(judged(generator, messages, plain.text)) == {"true_logodds"}
