from pathlib import Path

import pytest

from qa.settings import PRESETS, SettingsError, load_settings


def test_defaults_are_the_accurate_preset() -> None:
    s = load_settings(environ={})
    assert s.preset == "accurate"
    assert s.generation.model == "qwen2.5-coder-1.5b"
    assert s.ui.host == "127.0.0.1"


def test_fast_preset_uses_the_small_model() -> None:
    s = load_settings(preset="fast", environ={})
    assert s.generation.model == "qwen2.5-0.5b"
    assert set(PRESETS) >= {"fast", "accurate"}


def test_precedence_file_then_env_then_arguments(tmp_path: Path) -> None:
    config = tmp_path / "qa.toml"
    config.write_text("[retrieval]\ntop_k = 5\ncandidates = 30\n[ui]\nport = 9000\n")
    env = {"QA_RETRIEVAL__TOP_K": "6", "QA_UI__PORT": "9100"}
    s = load_settings(config_file=config, environ=env, ui={"port": 9200})
    assert s.retrieval.candidates == 30  # file
    assert s.retrieval.top_k == 6  # env beats file
    assert s.ui.port == 9200  # argument beats env


def test_preset_from_environment() -> None:
    assert load_settings(environ={"QA_PRESET": "fast"}).generation.model == "qwen2.5-0.5b"


def test_unknown_key_is_a_clear_error() -> None:
    with pytest.raises(SettingsError, match=r"retrieval\.topk"):
        load_settings(environ={}, retrieval={"topk": 3})


def test_bad_value_names_the_source(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="QA_\\* environment"):
        load_settings(environ={"QA_RETRIEVAL__TOP_K": "many"})


def test_unknown_preset() -> None:
    with pytest.raises(SettingsError, match="Unknown preset"):
        load_settings(preset="turbo", environ={})


def test_unreadable_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "qa.toml"
    bad.write_text("[retrieval\n")
    with pytest.raises(SettingsError, match="Cannot read config file"):
        load_settings(config_file=bad, environ={})


def test_the_fitted_confidence_model_is_the_default_and_the_fast_preset_drops_it() -> None:
    from qa.settings import FITTED_ANSWER_WEIGHTS

    accurate = load_settings(environ={}).confidence
    assert accurate.answer_weights == FITTED_ANSWER_WEIGHTS and "bias" in accurate.refusal_weights
    assert not accurate.self_judge and accurate.min_answer == 0.0
    fast = load_settings(environ={}, preset="fast").confidence
    assert fast.answer_weights == {} and fast.refusal_weights == {}
