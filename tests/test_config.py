"""Settings: environment and .env, the real environment winning, masked secrets, clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from alpaca_nb.config import Settings, find_dotenv, read_environment
from alpaca_nb.errors import ConfigurationError
from alpaca_nb.models import AlpacaCredentials, AlpacaEnvironment

SECRET = "sk-THIS-MUST-NEVER-SHOW"
KEY = "PK-THIS-MUST-NEVER-SHOW"


def test_no_keys_means_local():
    settings = Settings.load({})
    assert settings.environment is AlpacaEnvironment.LOCAL
    assert settings.credentials.api_key == ""
    assert settings.feed == "iex" and settings.timeout == 10.0


def test_keys_default_to_paper():
    settings = Settings.load({"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": SECRET})
    assert settings.environment is AlpacaEnvironment.PAPER
    assert settings.credentials.paper


@pytest.mark.parametrize("env, variable", [
    ({"ALPACA_API_KEY": KEY}, "ALPACA_API_SECRET"),
    ({"ALPACA_API_SECRET": SECRET}, "ALPACA_API_KEY"),
    ({"ALPACA_ENVIRONMENT": "live"}, "ALPACA_API_KEY"),
    ({"ALPACA_ENVIRONMENT": "paper"}, "ALPACA_API_KEY"),
    ({"ALPACA_ENVIRONMENT": "staging"}, "ALPACA_ENVIRONMENT"),
    ({"ALPACA_DATA_FEED": "nasdaq"}, "ALPACA_DATA_FEED"),
    ({"ALPACA_NB_TIMEOUT": "-1"}, "ALPACA_NB_TIMEOUT"),
    ({"ALPACA_TRADING_URL": "127.0.0.1:8000"}, "ALPACA_TRADING_URL"),
])
def test_misconfiguration_names_the_variable(env, variable):
    with pytest.raises(ConfigurationError) as info:
        Settings.load(env)
    assert variable in str(info.value)
    assert SECRET not in str(info.value) and KEY not in str(info.value)


def test_half_set_pair_never_echoes_the_secret():
    with pytest.raises(ConfigurationError) as info:
        Settings.load({"ALPACA_API_SECRET": SECRET})
    assert SECRET not in str(info.value)


def test_secrets_are_masked_in_every_repr():
    settings = Settings.load({"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": SECRET,
                              "ALPACA_ENVIRONMENT": "live"})
    for text in (repr(settings), str(settings), repr(settings.credentials), str(settings.credentials),
                 f"{settings.credentials}"):
        assert SECRET not in text and KEY not in text
    assert "live" in repr(settings.credentials)
    assert "<hidden>" in repr(settings.credentials)


def test_dotenv_found_upward_and_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(
        f"ALPACA_API_KEY={KEY}\nALPACA_API_SECRET={SECRET}\nALPACA_DATA_FEED=sip\nUNRELATED=1\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert find_dotenv() == tmp_path / ".env"
    monkeypatch.setenv("ALPACA_DATA_FEED", "iex")
    values = read_environment()
    assert values["ALPACA_API_KEY"] == KEY
    assert values["ALPACA_DATA_FEED"] == "iex"  # the real environment wins
    assert "UNRELATED" not in values
    settings = Settings.load()
    assert settings.environment is AlpacaEnvironment.PAPER and settings.feed == "iex"


def test_ledger_path_and_home(tmp_path):
    settings = Settings.load({"ALPACA_NB_HOME": str(tmp_path)})
    assert settings.ledger_path == tmp_path / "ledger.duckdb"
    settings = Settings.load({"ALPACA_NB_LEDGER": str(tmp_path / "x.duckdb")})
    assert settings.ledger_path == Path(tmp_path / "x.duckdb")


def test_url_overrides_are_hosts_without_trailing_slash():
    settings = Settings.load({"ALPACA_TRADING_URL": "http://127.0.0.1:9/", "ALPACA_DATA_URL": "http://127.0.0.1:9"})
    assert settings.trading_url == "http://127.0.0.1:9" and settings.data_url == "http://127.0.0.1:9"


def test_environment_parsing_is_case_insensitive():
    assert AlpacaCredentials("k", "s", "PAPER").environment is AlpacaEnvironment.PAPER
    assert Settings.load({"ALPACA_ENVIRONMENT": "Local"}).environment is AlpacaEnvironment.LOCAL


def test_import_is_light_and_the_optional_parts_load_on_first_use():
    import subprocess
    import sys

    code = ("import sys, alpaca_nb as nb\n"
            "heavy = ['matplotlib', 'ipywidgets', 'duckdb', 'alpaca', 'pandas']\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "print(nb.plots.candlestick.__module__, nb.OrderTicket.__module__, nb.analytics.pnl.__module__)\n"
            "print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == [
        "[]", "alpaca_nb.plots alpaca_nb.widgets.ticket alpaca_nb.analytics", "True True"]
