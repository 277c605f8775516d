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


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"ALPACA_API_KEY": KEY}, "ALPACA_API_SECRET"),
        ({"ALPACA_API_SECRET": SECRET}, "ALPACA_API_KEY"),
        ({"ALPACA_ENVIRONMENT": "live"}, "ALPACA_API_KEY"),
        ({"ALPACA_ENVIRONMENT": "paper"}, "ALPACA_API_KEY"),
        ({"ALPACA_ENVIRONMENT": "staging"}, "ALPACA_ENVIRONMENT"),
        ({"ALPACA_DATA_FEED": "nasdaq"}, "ALPACA_DATA_FEED"),
        ({"ALPACA_NB_TIMEOUT": "-1"}, "ALPACA_NB_TIMEOUT"),
        ({"ALPACA_TRADING_URL": "127.0.0.1:8000"}, "ALPACA_TRADING_URL"),
    ],
)
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
    settings = Settings.load({"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": SECRET, "ALPACA_ENVIRONMENT": "live"})
    for text in (
        repr(settings),
        str(settings),
        repr(settings.credentials),
        str(settings.credentials),
        f"{settings.credentials}",
    ):
        assert SECRET not in text and KEY not in text
    assert "live" in repr(settings.credentials)
    assert "<hidden>" in repr(settings.credentials)


def test_dotenv_found_upward_and_environment_wins(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(
        f"ALPACA_API_KEY={KEY}\nALPACA_API_SECRET={SECRET}\nALPACA_DATA_FEED=sip\nUNRELATED=1\n"
    )
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    monkeypatch.delenv("ALPACA_NB_DOTENV", raising=False)  # the suite switches .env off: on here
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

    code = (
        "import sys, alpaca_nb as nb\n"
        "heavy = ['matplotlib', 'ipywidgets', 'duckdb', 'alpaca', 'pandas']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "print(nb.plots.candlestick.__module__, nb.OrderTicket.__module__, nb.analytics.pnl.__module__)\n"
        "print('matplotlib' in sys.modules, 'ipywidgets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:3] == [
        "[]",
        "alpaca_nb.plots alpaca_nb.widgets.ticket alpaca_nb.analytics",
        "True True",
    ]


# -- secrets out of reach (issue 9, finding 9) --------------------------------------------------


def _verbose_traceback(err: BaseException) -> str:
    """What ``%xmode Verbose`` shows: every frame's locals, the whole __cause__/__context__ chain.

    This file's own frames are left out: their locals are the test's, not alpaca_nb's.
    """
    import traceback

    tb = err.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.TracebackException(type(err), err, tb, capture_locals=True).format())


def _raised(fn) -> BaseException:
    try:
        fn()
    except Exception as err:
        return err
    raise AssertionError("nothing was raised")


def test_a_secret_is_a_str_on_the_wire_and_a_mask_everywhere_else():
    import json

    import msgpack

    from alpaca_nb.secret import Secret

    secret = Secret(SECRET)
    headers = {"APCA-API-SECRET-KEY": secret}
    for shown in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret:>40}",
        "%s" % secret,  # noqa: UP031 (printf formatting is one of the ways shown)
        repr(headers),
        str([secret]),
        repr(Secret(secret)),
    ):
        assert SECRET not in shown
    assert repr(secret) == "<hidden>" and repr(Secret("")) == "<unset>"
    assert secret.reveal() == SECRET and type(secret.reveal()) is str
    assert secret == SECRET and hash(secret) == hash(SECRET) and isinstance(secret, str)
    assert json.loads(json.dumps(headers)) == {"APCA-API-SECRET-KEY": SECRET}  # what the streams send
    assert msgpack.unpackb(msgpack.packb(headers)) == {"APCA-API-SECRET-KEY": SECRET}
    assert secret.encode("latin-1") == SECRET.encode()  # what http.client writes for a header


def test_credentials_hold_the_keys_as_secrets():
    from alpaca_nb.secret import Secret

    creds = AlpacaCredentials(KEY, SECRET, "paper")
    assert isinstance(creds.api_key, Secret) and isinstance(creds.api_secret, Secret)
    assert creds.api_secret.reveal() == SECRET and creds == AlpacaCredentials(KEY, SECRET, "paper")
    for shown in (
        repr(creds),
        str(creds),
        repr(vars(creds)) if hasattr(creds, "__dict__") else "",
        repr({"key": creds.api_key, "secret": creds.api_secret}),
        f"{creds.api_secret}",
    ):
        assert SECRET not in shown and KEY not in shown
    settings = Settings.load({"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": SECRET})
    assert isinstance(settings.credentials.api_secret, Secret)


def test_a_bad_environment_for_credentials_is_a_configuration_error_without_the_keys():
    err = _raised(lambda: AlpacaCredentials(KEY, SECRET, "staging"))
    assert isinstance(err, ConfigurationError) and "staging" in str(err)
    text = _verbose_traceback(err)
    assert SECRET not in text and KEY not in text


def test_read_environment_hands_out_the_keys_masked(tmp_path, monkeypatch):
    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_API_SECRET", SECRET)
    values = read_environment()
    assert values["ALPACA_API_SECRET"] == SECRET
    assert SECRET not in repr(values) and KEY not in repr(values)


@pytest.mark.parametrize(
    "bad",
    [
        {"ALPACA_NB_TIMEOUT": "soon"},
        {"ALPACA_DATA_FEED": "nasdaq"},
        {"ALPACA_ENVIRONMENT": "staging"},
        {"ALPACA_TRADING_URL": "ftp://127.0.0.1"},
    ],
)
def test_a_verbose_traceback_from_settings_load_shows_no_key(bad):
    # The mapping is built inline (never a local of this test): only alpaca_nb's frames hold it.
    err = _raised(lambda: Settings.load({"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": SECRET, **bad}))
    assert isinstance(err, ConfigurationError)
    text = _verbose_traceback(err)
    assert "Settings.load" in text or "in load" in text  # the frame with the locals is there
    assert SECRET not in text and KEY not in text


@pytest.mark.parametrize("variable", ["ALPACA_TRADING_URL", "ALPACA_DATA_URL"])
@pytest.mark.parametrize(
    "url",
    [
        f"https://{KEY}:{SECRET}@paper-api.alpaca.markets",
        f"http://{KEY}:{SECRET}@127.0.0.1:8765",
        f"ftp://{KEY}:{SECRET}@127.0.0.1:8765",
        f"https://{SECRET}@127.0.0.1",
    ],
)
def test_a_url_with_a_user_or_password_is_refused_without_repeating_it(variable, url):
    err = _raised(lambda: Settings.load({variable: url}))
    assert isinstance(err, ConfigurationError) and variable in str(err)
    assert "***@" in str(err)
    text = _verbose_traceback(err)
    assert SECRET not in text and KEY not in text


def test_endpoints_refuse_a_url_with_a_password_without_repeating_it():
    from alpaca_nb.broker import Endpoints

    err = _raised(lambda: Endpoints.for_environment(AlpacaEnvironment.LIVE, f"http://{KEY}:{SECRET}@127.0.0.1:9"))
    assert isinstance(err, ConfigurationError) and "trading_url" in str(err)
    text = _verbose_traceback(err)
    assert SECRET not in text and KEY not in text
    with pytest.raises(ConfigurationError, match="data_url"):
        Endpoints("http://127.0.0.1:9", f"http://{KEY}:{SECRET}@127.0.0.1:9")


LIVE_HOSTS = [
    "https://api.alpaca.markets",
    "https://API.Alpaca.Markets/",
    "https://api.alpaca.markets.",
    "https://broker-api.alpaca.markets",
    "http://alpaca.markets:443",
]


@pytest.mark.parametrize("environment", ["paper", "local"])
@pytest.mark.parametrize("url", LIVE_HOSTS)
def test_a_paper_or_local_account_pointed_at_the_live_host_is_refused(environment, url):
    env = {"ALPACA_ENVIRONMENT": environment, "ALPACA_TRADING_URL": url}
    if environment == "paper":
        env.update(ALPACA_API_KEY=KEY, ALPACA_API_SECRET=SECRET)
    with pytest.raises(ConfigurationError, match="live trading host") as info:
        Settings.load(env)
    assert f"ALPACA_ENVIRONMENT is {environment!r}" in str(info.value) and "ALPACA_TRADING_URL" in str(info.value)


@pytest.mark.parametrize("environment", [AlpacaEnvironment.PAPER, AlpacaEnvironment.LOCAL])
def test_endpoints_refuse_a_paper_or_local_account_at_the_live_host(environment):
    from alpaca_nb.broker import Endpoints

    with pytest.raises(ConfigurationError, match="live trading host"):
        Endpoints.for_environment(environment, "https://api.alpaca.markets")


def test_initialize_refuses_paper_keys_aimed_at_the_live_host_before_any_request(broker):
    from alpaca_nb import AlpacaService, InMemoryOrderStore

    svc = AlpacaService(InMemoryOrderStore())
    with pytest.raises(ConfigurationError, match="live trading host"):
        svc.initialize_sync(
            AlpacaCredentials(broker.key, broker.secret, "paper"),
            trading_url="https://api.alpaca.markets",
            data_url=broker.url,
        )
    assert svc.broker is None


def test_paper_host_stays_paper_and_live_may_point_anywhere():
    paper = Settings.load(
        {"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": SECRET, "ALPACA_TRADING_URL": "https://paper-api.alpaca.markets"}
    )
    assert paper.environment is AlpacaEnvironment.PAPER
    for url in ("https://api.alpaca.markets", "http://127.0.0.1:8765"):
        live = Settings.load(
            {
                "ALPACA_API_KEY": KEY,
                "ALPACA_API_SECRET": SECRET,
                "ALPACA_ENVIRONMENT": "live",
                "ALPACA_TRADING_URL": url,
            }
        )
        assert live.environment is AlpacaEnvironment.LIVE and live.trading_url == url
    # A paper account on a local broker (how the tests run paper keys) is fine too.
    assert (
        Settings.load(
            {"ALPACA_API_KEY": KEY, "ALPACA_API_SECRET": SECRET, "ALPACA_TRADING_URL": "http://127.0.0.1:8765"}
        ).trading_url
        == "http://127.0.0.1:8765"
    )


def test_the_local_brokers_repr_and_its_sims_show_no_key():
    from alpaca_nb.sim import LocalBroker

    local = LocalBroker(key=KEY, secret=SECRET)
    for shown in (repr(local), str(local), repr(local.sim), str(local.sim)):
        assert SECRET not in shown and KEY not in shown
    assert local.key == KEY and local.secret == SECRET  # still there for whoever starts it


def test_the_broker_hands_alpaca_py_the_keys_masked_and_they_work(broker):
    from alpaca_nb.broker import Broker, Endpoints

    creds = AlpacaCredentials(broker.key, broker.secret, "local")
    client = Broker(creds, Endpoints(broker.url, broker.url))
    assert client.call(client.trading.get, "/account")["status"] == "ACTIVE"
    for shown in (
        repr(client),
        repr(vars(client)),
        repr(client.session.headers),
        repr(client.trading._get_default_headers()),
        repr(client.data._get_default_headers()),
    ):
        assert broker.secret not in shown and broker.key not in shown


def test_the_local_brokers_keys_are_handed_out_masked(monkeypatch):
    from alpaca_nb.local import local_keys
    from alpaca_nb.secret import Secret

    monkeypatch.setenv("ALPACA_API_KEY", KEY)
    monkeypatch.setenv("ALPACA_API_SECRET", SECRET)
    keys = local_keys()
    assert keys == (KEY, SECRET) and all(isinstance(k, Secret) for k in keys)
    assert SECRET not in repr(keys) and KEY not in repr(keys)


def test_a_broker_refused_in_its_constructor_still_has_a_verbose_traceback():
    from alpaca_nb.broker import Broker, Endpoints

    local = Endpoints("http://127.0.0.1:9", "http://127.0.0.1:9")
    err = _raised(lambda: Broker(AlpacaCredentials("", "", "paper"), local))
    assert isinstance(err, ConfigurationError) and "ALPACA_API_KEY" in str(err)
    assert "Broker(not set up)" in _verbose_traceback(err)  # repr(self) of the half-built Broker


@pytest.mark.parametrize("value", ["inf", "1e308", "301", "0", "-1", "nan", "soon"])
def test_a_timeout_beyond_any_request_life_is_refused(value):
    """An endless timeout would let a request land after its intent was settled as never placed
    (AlpacaService.UNPLACED_AFTER, 600 s): ALPACA_NB_TIMEOUT is above 0 and at most 300 s."""
    with pytest.raises(ConfigurationError, match="ALPACA_NB_TIMEOUT"):
        Settings.load({"ALPACA_NB_TIMEOUT": value})


@pytest.mark.parametrize("value", [float("inf"), 0, -3, 301, "10", True])
def test_initialize_refuses_a_bad_timeout_before_any_request(broker, value):
    from alpaca_nb import AlpacaCredentials, AlpacaService, InvalidArgumentError

    before = broker.requests["total"]
    with pytest.raises(InvalidArgumentError) as info:
        AlpacaService().initialize_sync(
            AlpacaCredentials(broker.key, broker.secret, "local"),
            trading_url=broker.url,
            data_url=broker.url,
            timeout=value,
        )
    assert info.value.argument == "timeout" and broker.requests["total"] == before


def test_the_largest_timeout_stays_far_below_the_settling_delay():
    from alpaca_nb import AlpacaService
    from alpaca_nb.config import MAX_TIMEOUT

    assert 2 * MAX_TIMEOUT <= AlpacaService.UNPLACED_AFTER
    assert Settings.load({"ALPACA_NB_TIMEOUT": "300"}).timeout == 300
