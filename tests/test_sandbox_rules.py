"""The sandbox's refusals on purpose (issue #13) and its 409 on a repeated commit (issue #11), over HTTP.

Refusals: ``Faults(refuse_rate=...)`` and catalogue rules (``MaxPrice``,
``IsActive: false``), through the Python API and ``flexybulk sandbox``.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from clirun import flexybulk
from flexybulk.cli import tools as cli  # the sandbox command lives in flexybulk/cli/tools.py
from flexybulk.sandbox import Faults, Sandbox, default_catalogue, load_catalogue, with_rules
from flexybulk.sandbox.catalogue import describe_rules, normalise_catalogue, parse_max_price
from flexybulk.sandbox.faults import FaultKind, decide
from test_sandbox import GAVEKORT, JULEGAVEKORT, Api, decimal_json, new_id, order_body

LINE = "GiftCertificates.GiftCertificates[0]"


@pytest.fixture
def sandbox():
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def api(sandbox):
    client = Api(sandbox)
    yield client
    client.session.close()


def _open_order(api, quantity=3, price=Decimal("100")) -> str:
    assert api.customer().status_code in (200, 201)
    order_id = new_id()
    assert api.put("/api/v1/salesorders", order_body(order_id, quantity=quantity, price=price)).status_code == 201
    return order_id


# -- refuse_rate ----------------------------------------------------------------


def test_a_refused_sales_order_put_names_a_field_and_saves_nothing(sandbox, api):
    assert api.customer().status_code == 201
    sandbox.faults = Faults(refuse_rate=1.0)
    response = api.put("/api/v1/salesorders", order_body(new_id()))
    assert response.status_code == 400
    assert response.json()["Field"] == f"{LINE}.Price"
    assert "not accepted" in response.json()["Message"] and "refuse_rate" in response.json()["Message"]
    assert sandbox.state.counts()["orders"] == 0
    assert sandbox.state.requests[-1] == ("PUT", "/api/v1/salesorders", 400)


def test_a_refused_commit_names_a_field_and_issues_nothing(sandbox, api):
    order_id = _open_order(api)
    sandbox.faults = Faults(refuse_rate=1.0)
    response = api.commit(order_id, "pay-1", 300)
    assert response.status_code == 400
    assert response.json()["Field"] == "Payments[0].ExternalPayment.Type"
    assert sandbox.state.counts()["certificates"] == 0
    assert sandbox.state.orders[order_id]["Status"] == "Open"
    sandbox.faults = Faults()
    assert api.commit(order_id, "pay-1", 300).status_code == 200  # the same commit, no longer refused
    assert sandbox.state.counts()["certificates"] == 3


def test_refusals_hit_only_sales_orders_and_commits_and_never_an_unauthorised_call(sandbox, api):
    sandbox.faults = Faults(refuse_rate=1.0)
    assert api.customer().status_code == 201
    assert api.get("/api/v2/departments").status_code == 200
    assert api.get("/api/v1/odata/giftcertificatetypes").status_code == 200
    assert Api(sandbox, token=None).put("/api/v1/salesorders", order_body(new_id())).status_code == 401
    assert sandbox.state.counts()["customers"] == 1


def test_only_narrows_refusals_to_the_calls_it_matches(sandbox, api):
    sandbox.faults = Faults(refuse_rate=1.0, only=r"^POST .*/commit$")
    order_id = _open_order(api)  # the order PUT is not refused
    assert api.commit(order_id, "pay-1", 300).status_code == 400


def test_a_share_of_refusals_is_seeded_and_leaves_the_other_faults_where_they_were(sandbox, api):
    assert api.customer().status_code == 201
    sandbox.faults = Faults(refuse_rate=0.3, seed=5)
    statuses = [api.put("/api/v1/salesorders", order_body(new_id())).status_code for _ in range(200)]
    assert set(statuses) == {201, 400}
    assert 40 <= statuses.count(400) <= 80  # 30 % of 200, give or take
    assert sandbox.state.counts()["orders"] == statuses.count(201)
    sandbox.faults = Faults(refuse_rate=0.3, seed=5)
    again = [api.put("/api/v1/salesorders", order_body(new_id())).status_code for _ in range(200)]
    assert again == statuses

    # Refusals are drawn after the 5xx band: the same seed gives the same 5xx with or without them.
    def departments(faults):
        sandbox.faults = faults
        return [api.get("/api/v2/departments").status_code for _ in range(40)]

    assert departments(Faults(error_rate=0.3, seed=8)) == departments(Faults(error_rate=0.3, refuse_rate=0.5, seed=8))


def test_decide_puts_refusals_last():
    class Fixed:
        def __init__(self, value):
            self.value = value

        def random(self):
            return self.value

    faults = Faults(error_rate=0.2, rate_limit_rate=0.2, drop_rate=0.2, refuse_rate=0.2)
    assert [decide(faults, Fixed(v)) for v in (0.1, 0.3, 0.5, 0.7, 0.9)] == [
        FaultKind.ERROR_503, FaultKind.RATE_LIMITED, FaultKind.DROPPED, FaultKind.REFUSED, FaultKind.NONE]


@pytest.mark.parametrize("kwargs", [{"refuse_rate": 1.1}, {"refuse_rate": -0.1}, {"drop_rate": 0.6, "refuse_rate": 0.5},
                                    {"commit_409_on_repeat": "yes"}])
def test_impossible_refusal_faults_are_refused(kwargs):
    with pytest.raises(ValueError):
        Faults(**kwargs)


# -- catalogue rules -------------------------------------------------------------


def test_a_line_above_the_types_max_price_is_refused_naming_the_price():
    catalogue = with_rules(max_prices={"gavekort": Decimal("500")})  # names match without regard to case
    with Sandbox(catalogue=catalogue) as sb:
        api = Api(sb)
        types = decimal_json(api.get("/api/v1/odata/giftcertificatetypes"))["value"]
        assert types[0]["Name"] == "Gavekort" and types[0]["MaxPrice"] == 500
        assert "MaxPrice" not in types[1]
        api.customer()
        above = api.put("/api/v1/salesorders", order_body(new_id(), price=Decimal("500.01")))
        assert above.status_code == 400
        assert above.json() == {"Message": "Price 500.01 is above the maximum price 500 of gift certificate type 'Gavekort'.",
                                "Field": f"{LINE}.Price"}
        at = api.put("/api/v1/salesorders", order_body(new_id(), price=Decimal("500.00")))
        assert at.status_code == 201
        other_type = api.put("/api/v1/salesorders", order_body(new_id(), price=Decimal("5000"), type_id=JULEGAVEKORT))
        assert other_type.status_code == 201
        assert sb.state.counts()["orders"] == 2


def test_an_inactive_type_is_refused_naming_the_type():
    with Sandbox(catalogue=with_rules(inactive=["Julegavekort"])) as sb:
        api = Api(sb)
        api.customer()
        refused = api.put("/api/v1/salesorders", order_body(new_id(), type_id=JULEGAVEKORT))
        assert refused.status_code == 400
        assert refused.json()["Field"] == f"{LINE}.GiftCertificateTypeId"
        assert "is not active" in refused.json()["Message"]
        assert api.put("/api/v1/salesorders", order_body(new_id(), type_id=GAVEKORT)).status_code == 201


def test_with_rules_copies_and_names_unknown_types():
    ruled = with_rules(max_prices={GAVEKORT: 1000}, inactive=["firmagavekort"])  # by id, or by name
    assert describe_rules(ruled["types"]) == ["Gavekort at most 1000", "Firmagavekort inactive"]
    assert describe_rules(default_catalogue()["types"]) == []  # the built-in catalogue is untouched
    with pytest.raises(ValueError, match="no gift certificate type 'Gavekortt'.*'Gavekort', 'Julegavekort'"):
        with_rules(max_prices={"Gavekortt": 1000})
    with pytest.raises(ValueError, match="MaxPrice must be a number greater than 0"):
        with_rules(max_prices={"Gavekort": 0})


@pytest.mark.parametrize("rule", [{"MaxPrice": "500"}, {"MaxPrice": 0}, {"MaxPrice": -1}, {"MaxPrice": True},
                                  {"maxprice": [500]}, {"IsActive": "false"}, {"IsActive": 0}])
def test_a_malformed_rule_in_a_catalogue_is_refused(rule):
    catalogue = default_catalogue()
    catalogue["types"][2].update(rule)
    with pytest.raises(ValueError, match=r"catalogue\['types'\]\[2\]"):
        normalise_catalogue(catalogue)


def test_a_catalogue_file_is_read_with_decimal_prices(tmp_path):
    path = tmp_path / "katalog.json"
    catalogue = {"types": [{"Id": "t-1", "Name": "Sommerkort", "MaxPrice": 499.95}, {"Id": "t-2", "Name": "Gammelt", "IsActive": False}],
                 "departments": [{"Id": 7, "Name": "Lager"}]}
    path.write_text(json.dumps(catalogue), encoding="utf-8")
    loaded = load_catalogue(path)
    assert loaded["types"][0]["MaxPrice"] == Decimal("499.95") and isinstance(loaded["types"][0]["MaxPrice"], Decimal)
    assert loaded["departments"] == [{"Id": 7, "Name": "Lager"}]
    (tmp_path / "broken.json").write_text('{"types": [', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken\.json is not UTF-8 JSON"):
        load_catalogue(tmp_path / "broken.json")
    (tmp_path / "half.json").write_text('{"types": []}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"half\.json is not a catalogue: catalogue\['departments'\]"):
        load_catalogue(tmp_path / "half.json")
    with pytest.raises(ValueError, match="Cannot read the catalogue file"):
        load_catalogue(tmp_path / "missing.json")


@pytest.mark.parametrize("text, expected", [("Gavekort=1000", ("Gavekort", Decimal("1000"))),
                                            ("Gave kort = 499.95", ("Gave kort", Decimal("499.95")))])
def test_max_price_option_values(text, expected):
    assert parse_max_price(text) == expected


@pytest.mark.parametrize("text", ["Gavekort", "=100", "Gavekort=", "Gavekort=1.000,50", "Gavekort=0", "Gavekort=inf"])
def test_bad_max_price_option_values_say_how_to_write_them(text):
    with pytest.raises(ValueError, match="must look like TYPE=AMOUNT"):
        parse_max_price(text)


# -- commit_409_on_repeat ---------------------------------------------------------


def test_a_repeated_commit_is_answered_409_already_committed_and_issues_nothing(sandbox, api):
    order_id = _open_order(api)
    sandbox.faults = Faults(commit_409_on_repeat=True)
    first = api.commit(order_id, "pay-1", 300)
    assert first.status_code == 200 and len(first.json()["GiftCertificates"]) == 3
    repeat = api.commit(order_id, "pay-1", 300)
    assert repeat.status_code == 409
    assert repeat.json() == {"Message": f"Sales order {order_id} is already committed."}
    other = api.commit(order_id, "pay-2", 300)
    assert other.status_code == 409 and "a different payment cannot be added" in other.json()["Message"]
    assert sandbox.state.counts()["certificates"] == 3


def test_a_lost_commit_answer_then_409_on_the_retry(sandbox, api):
    """The issue #11 vendor: the commit is done, its answer lost, the safe retry refused."""
    import requests

    order_id = _open_order(api, quantity=2)
    sandbox.faults = Faults(drop_rate=1.0, only=r"^POST .*/commit$", commit_409_on_repeat=True)
    with pytest.raises(requests.ConnectionError):
        api.commit(order_id, "pay-1", 200)
    assert sandbox.state.counts()["certificates"] == 2
    sandbox.faults = Faults(commit_409_on_repeat=True)
    assert api.commit(order_id, "pay-1", 200).status_code == 409
    assert sandbox.state.counts()["certificates"] == 2


# -- flexybulk sandbox ---------------------------------------------------------------


def test_the_sandbox_command_serves_the_catalogue_rules_and_faults_it_was_given(tmp_path, monkeypatch):
    path = tmp_path / "katalog.json"
    catalogue = default_catalogue()
    catalogue["types"][0]["MaxPrice"] = 2000
    path.write_text(json.dumps(catalogue), encoding="utf-8")
    started: list[Sandbox] = []
    seen: dict = {}
    real_start = Sandbox.start

    def start(self):
        started.append(self)
        return real_start(self)

    def sleep(seconds):  # the command's wait for Ctrl-C: look at the running sandbox, then press Ctrl-C
        sb = started[0]
        api = Api(sb)
        seen["types"] = decimal_json(api.get("/api/v1/odata/giftcertificatetypes"))["value"]
        api.customer()
        seen["above"] = api.put("/api/v1/salesorders", order_body(new_id(), price=Decimal("300.50"))).json()
        seen["faults"] = sb.faults
        raise KeyboardInterrupt

    monkeypatch.setattr(Sandbox, "start", start)
    monkeypatch.setattr(cli, "time", type("FakeTime", (), {"sleep": staticmethod(sleep)}))
    run = flexybulk("sandbox", "--port", "0", "--catalogue", path, "--max-price", "Gavekort=300.00",
                    "--inactive", "Oplevelsesgavekort", "--refuse-rate", "0.25", "--commit-409-on-repeat",
                    "--only", "^POST ", "--seed", "3")
    assert run.code == 0, run.output
    assert f"Catalogue: {path}; rules: Gavekort at most 300.00, Oplevelsesgavekort inactive." in run.stdout
    assert "Stopped." in run.stdout
    assert [t.get("MaxPrice") for t in seen["types"]] == [Decimal("300.00"), None, None, None]
    assert [t["IsActive"] for t in seen["types"]] == [True, True, False, True]
    assert seen["above"]["Field"] == f"{LINE}.Price"
    assert seen["faults"] == Faults(refuse_rate=0.25, commit_409_on_repeat=True, only="^POST ", seed=3)
    assert not started[0]._serving  # stopped on Ctrl-C


@pytest.mark.parametrize("args, text", [
    (["--max-price", "Gavekort"], "--max-price 'Gavekort' must look like TYPE=AMOUNT"),
    (["--max-price", "Ukendt=100"], "There is no gift certificate type 'Ukendt'"),
    (["--inactive", "Ukendt"], "There is no gift certificate type 'Ukendt'"),
    (["--only", "("], "--only '(' is not a regular expression"),
    (["--refuse-rate", "0.6", "--drop-rate", "0.6"], "must not exceed 1.0"),
])
def test_bad_sandbox_options_are_usage_errors(args, text):
    run = flexybulk("sandbox", "--port", "0", *args)
    assert run.code == 2, run.output
    assert text in run.stderr and "Traceback" not in run.output


def test_a_bad_catalogue_file_is_a_usage_error_naming_the_file(tmp_path):
    path = tmp_path / "katalog.json"
    path.write_text('{"types": [{"Id": "t", "Name": "T", "MaxPrice": "mange"}], "departments": []}', encoding="utf-8")
    run = flexybulk("sandbox", "--port", "0", "--catalogue", path)
    assert run.code == 2
    assert f"The catalogue file {path} is not a catalogue: catalogue['types'][0]: MaxPrice must be a number" in run.stderr
