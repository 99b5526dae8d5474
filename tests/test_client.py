"""FlexyboxClient: the five calls against the sandbox; retry and odd bodies with canned responses."""

from __future__ import annotations

import json
import socket
from decimal import Decimal

import pytest
import responses

from flexybulk.client import FlexyboxClient, Throttle, certificate_numbers, parse_catalogue
from flexybulk.errors import ApiError, AuthError, ConfigError, ConflictError
from flexybulk.settings import Secret, Settings

GAVEKORT = "e2080ad4-3ed0-55aa-bcb6-d5d895186603"
BASE = "https://pos.example.test"


def _issue_one(client: FlexyboxClient, *, order_id: str, payment_id: str, quantity: int = 2, price: str = "499.95") -> dict:
    client.put_customer("cust-1", full_name="Test Person", email="test@example.com")
    body = FlexyboxClient.sales_order_body(order_id, customer_id="cust-1", department_id=3, gift_certificate_type_id=GAVEKORT,
                                           quantity=quantity, price=Decimal(price), currency="DKK")
    client.put_sales_order(body)
    return client.commit_sales_order(order_id, payment_id=payment_id, amount=Decimal(price) * quantity)


def test_catalogue_from_sandbox_keeps_ids_exactly(settings, sandbox):
    with FlexyboxClient(settings) as client:
        catalogue = client.get_catalogue()
    assert [t.name for t in catalogue.types] == ["Gavekort", "Julegavekort", "Oplevelsesgavekort", "Firmagavekort"]
    assert catalogue.types[0].id == GAVEKORT
    assert [(d.id, d.name) for d in catalogue.departments] == [(1, "Webshop"), (2, "København"), (3, "Aarhus"), (4, "Odense")]
    assert all(type(d.id) is int for d in catalogue.departments)  # sent back as numbers, type included
    assert {m for m, _, _ in sandbox.state.requests} == {"GET"}


def test_full_flow_issues_exactly_quantity_certificates(settings, sandbox):
    with FlexyboxClient(settings) as client:
        answer = _issue_one(client, order_id="3f2b8c1e-0000-4000-8000-000000000001", payment_id="pay-1", quantity=2)
        numbers = certificate_numbers(answer)
        assert len(numbers) == 2 and len(set(numbers)) == 2
        assert sandbox.state.counts()["certificates"] == 2
        # The same payment id again is ignored: same answer, nothing new.
        again = client.commit_sales_order("3f2b8c1e-0000-4000-8000-000000000001", payment_id="pay-1", amount=Decimal("999.90"))
        assert certificate_numbers(again) == numbers
        assert sandbox.state.counts()["certificates"] == 2
        # A different payment id on a committed order is a conflict.
        with pytest.raises(ConflictError) as err:
            client.commit_sales_order("3f2b8c1e-0000-4000-8000-000000000001", payment_id="pay-2", amount=Decimal("999.90"))
        assert err.value.status == 409
    assert sandbox.state.counts()["certificates"] == 2
    assert sandbox.state.certificates[0]["Amount"] == Decimal("499.95")


def test_bad_token_is_auth_error_with_status(settings, sandbox):
    bad = Settings(token=Secret("wrong"), crm_url=sandbox.url, pos_url=sandbox.url, api_url=sandbox.url, max_attempts=3)
    with FlexyboxClient(bad) as client, pytest.raises(AuthError) as err:
        client.get_gift_certificate_types()
    assert err.value.status == 401
    assert "wrong" not in str(err.value)
    assert len(sandbox.state.requests) == 1  # a 401 is never retried


def test_400_keeps_status_and_server_message_naming_the_field(settings, sandbox):
    with FlexyboxClient(settings) as client, pytest.raises(ApiError) as err:
        client.put_customer("c-1", full_name="Test", email="not-an-email")
    assert err.value.status == 400
    assert "EmailAddress" in err.value.server_message
    assert err.value.outcome_unknown is False
    assert "PUT /api/v2/customers/c-1 answered 400" in str(err.value)
    assert len(sandbox.state.requests) == 1  # a 400 is never retried


def test_dropped_responses_are_retried_and_the_commit_issues_once(settings, sandbox):
    from flexybulk.sandbox import Faults

    sandbox.faults = Faults(drop_rate=0.5, seed=7)
    with FlexyboxClient(settings.__class__(**{**settings.__dict__, "max_attempts": 12})) as client:
        for i in range(5):
            _issue_one(client, order_id=f"3f2b8c1e-0000-4000-8000-00000000001{i}", payment_id=f"pay-{i}", quantity=3)
    assert sandbox.state.counts()["certificates"] == 15
    assert sandbox.state.counts()["committed_orders"] == 5
    assert any(status is None for _, _, status in sandbox.state.requests)  # some answers really were dropped


def test_money_goes_out_as_exact_json_numbers(settings, sandbox):
    seen = {}
    with responses.RequestsMock() as rsps:
        def capture(request):
            seen["body"] = request.body.decode()
            return (200, {}, json.dumps({"Id": "o"}))

        rsps.add_callback(responses.PUT, f"{BASE}/api/v1/salesorders", callback=capture)
        s = Settings(token=Secret("t"), pos_url=BASE)
        with FlexyboxClient(s) as client:
            client.put_sales_order(FlexyboxClient.sales_order_body("o", customer_id="c", department_id=1,
                                                                   gift_certificate_type_id=GAVEKORT, quantity=3,
                                                                   price=Decimal("0.10"), currency="DKK"))
    assert '"Price": 0.10' in seen["body"]
    assert '"DepartmentId": 1,' in seen["body"]
    assert '"Checksum": null' in seen["body"] and '"DebitMethod": "OnlinePayment"' in seen["body"]


@responses.activate
def test_429_honours_retry_after_and_pauses_everyone():
    waits: list[float] = []
    responses.add(responses.GET, f"{BASE}/api/v1/odata/giftcertificatetypes", status=429, headers={"Retry-After": "3"}, json={"Message": "slow down"})
    responses.add(responses.GET, f"{BASE}/api/v1/odata/giftcertificatetypes", json={"value": [{"id": "x", "name": "Gavekort"}]})
    now = [0.0]

    def sleep(seconds: float) -> None:  # a fake clock: waits are recorded, not slept
        waits.append(seconds)
        now[0] += seconds

    s = Settings(token=Secret("t"), pos_url=BASE, backoff=0.01)
    client = FlexyboxClient(s, sleep=sleep)
    client.throttle = Throttle(None, clock=lambda: now[0], sleep=sleep)
    types = client.get_gift_certificate_types()
    assert [t.name for t in types] == ["Gavekort"]
    assert waits and max(waits) >= 3.0
    assert len(responses.calls) == 2


@responses.activate
def test_5xx_exhausts_attempts_and_reports_outcome_unknown():
    for _ in range(3):
        responses.add(responses.POST, f"{BASE}/api/v1/salesorders/o/commit", status=503, body="busy")
    s = Settings(token=Secret("t"), pos_url=BASE, max_attempts=3, backoff=0.01)
    client = FlexyboxClient(s, sleep=lambda _: None)
    with pytest.raises(ApiError) as err:
        client.commit_sales_order("o", payment_id="p", amount=Decimal(100))
    assert err.value.status == 503
    assert err.value.outcome_unknown is True
    assert "gave up after 3 attempts" in str(err.value)
    assert len(responses.calls) == 3
    bodies = {c.request.body for c in responses.calls}
    assert len(bodies) == 1  # every attempt re-posts the same payment id


@responses.activate
def test_other_4xx_is_not_retried():
    responses.add(responses.PUT, f"{BASE}/api/v1/salesorders", status=422, json={"message": "must be positive", "field": "Price"})
    client = FlexyboxClient(Settings(token=Secret("t"), pos_url=BASE), sleep=lambda _: None)
    with pytest.raises(ApiError) as err:
        client.put_sales_order({"Id": "x"})
    assert err.value.status == 422
    assert err.value.server_message == "Price: must be positive"
    assert len(responses.calls) == 1


def test_connection_refused_is_known_not_sent():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    url = f"http://127.0.0.1:{port}"
    client = FlexyboxClient(Settings(token=Secret("t"), crm_url=url, pos_url=url, api_url=url, max_attempts=2), sleep=lambda _: None)
    with pytest.raises(ApiError) as err:
        client.get_departments()
    assert err.value.status is None
    assert err.value.outcome_unknown is False
    assert "could not connect" in str(err.value)


def test_catalogue_shapes_bare_list_envelope_and_any_case():
    bare = parse_catalogue([{"ID": 7, "NAME": "Aarhus", "Extra": True}], "department")
    envelope = parse_catalogue({"@odata.context": "x", "Value": [{"id": "g", "name": "Gavekort", "IsActive": False}]}, "type")
    assert (bare[0].id, bare[0].name, bare[0].active) == (7, "Aarhus", True)
    assert (envelope[0].id, envelope[0].active) == ("g", False)
    with pytest.raises(ApiError, match="lacks an Id or a Name"):
        parse_catalogue([{"Name": "no id"}], "department")
    with pytest.raises(ApiError, match="unexpected shape"):
        parse_catalogue({"items": []}, "department")


def test_certificate_numbers_tolerates_shapes():
    assert certificate_numbers({"GiftCertificates": [{"Number": 123}, {"CertificateNumber": "A-2"}]}) == ["123", "A-2"]
    assert certificate_numbers({"giftCertificates": {"GiftCertificates": [{"code": "X"}]}}) == ["X"]
    assert certificate_numbers({"Id": "o"}) == []
    assert certificate_numbers(None) == []


def test_throttle_caps_the_rate_across_callers():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    throttle = Throttle(rate=10, clock=lambda: now[0], sleep=sleep)
    for _ in range(21):
        throttle.acquire()
    assert now[0] == pytest.approx(2.0)  # 21 calls at 10/s: the last starts at 2.0 s
    throttle.pause(5)
    throttle.acquire()
    assert now[0] == pytest.approx(7.0)


def test_settings_refuse_plain_http_except_loopback_and_need_a_token():
    with pytest.raises(ConfigError, match="FLEXYBOX_TOKEN"):
        Settings(token=Secret(""))
    with pytest.raises(ConfigError, match="plain http"):
        Settings(token=Secret("t"), pos_url="http://pos.flexybox.com")
    ok = Settings(token=Secret("s3cr3t-token"), pos_url="http://127.0.0.1:8765/", crm_url="http://localhost:1")
    assert ok.pos_url == "http://127.0.0.1:8765"
    assert "s3cr3t" not in repr(ok) and str(ok.token) == "***"


def test_tls_verification_stays_on_and_honours_requests_ca_bundle(monkeypatch, tmp_path):
    bundle = tmp_path / "company-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    client = FlexyboxClient(Settings(token=Secret("t"), pos_url=BASE))
    assert client._environment(BASE)["verify"] == str(bundle)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert FlexyboxClient(Settings(token=Secret("t"), pos_url=BASE))._environment(BASE)["verify"] is True
