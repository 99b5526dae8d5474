"""What a call's attempts tell, kept across them (issue #11): the sandbox on 127.0.0.1, and canned answers."""

from __future__ import annotations

from decimal import Decimal

import pytest
import responses

from flexybulk.client import FlexyboxClient, says_already_committed
from flexybulk.errors import ApiError, ConflictError
from flexybulk.sandbox import Faults, Sandbox
from flexybulk.settings import Secret, Settings
from test_client import GAVEKORT

BASE = "https://pos.example.test"
COMMIT = f"{BASE}/api/v1/salesorders/o/commit"
ORDER_ID = "3f2b8c1e-0000-4000-8000-000000000007"


def _open_order(client: FlexyboxClient, quantity: int = 2) -> None:
    client.put_customer("cust-1", full_name="Test Person", email="test@example.com")
    client.put_sales_order(FlexyboxClient.sales_order_body(ORDER_ID, customer_id="cust-1", department_id=1,
                                                           gift_certificate_type_id=GAVEKORT, quantity=quantity,
                                                           price=Decimal("100"), currency="DKK"))


def test_a_409_after_a_lost_commit_answer_says_the_commit_may_have_happened(settings, sandbox):
    def sleep(seconds):  # between attempt 1 (answer lost) and attempt 2: the vendor now answers repeats 409
        sandbox.faults = Faults(commit_409_on_repeat=True)

    with FlexyboxClient(settings, sleep=sleep) as client:
        _open_order(client)
        sandbox.faults = Faults(drop_rate=1.0, only=r"^POST .*/commit$", commit_409_on_repeat=True)
        with pytest.raises(ConflictError) as err:
            client.commit_sales_order(ORDER_ID, payment_id="pay-1", amount=Decimal("200"))
    exc = err.value
    assert (exc.status, exc.server_message) == (409, f"Sales order {ORDER_ID} is already committed.")
    assert exc.outcome_unknown is True and exc.earlier_outcome_unknown is True and exc.not_sent is False
    assert str(exc) == (f"POST /api/v1/salesorders/{ORDER_ID}/commit answered 409 Conflict: Sales order {ORDER_ID} is "
                        "already committed. (attempt 1 may have been carried out: the connection closed before an "
                        "answer arrived)")
    assert exc.response_body == {"Message": f"Sales order {ORDER_ID} is already committed."}
    assert says_already_committed(exc)
    assert sandbox.state.counts()["certificates"] == 2  # the first attempt did commit
    assert [s for m, _, s in sandbox.state.requests if m == "POST"] == [None, 409]


def test_a_refusal_after_a_5xx_is_still_outcome_unknown(settings, sandbox):
    def sleep(seconds):
        sandbox.faults = Faults(refuse_rate=1.0)

    with FlexyboxClient(settings, sleep=sleep) as client:
        client.put_customer("cust-1", full_name="Test Person", email="test@example.com")
        sandbox.faults = Faults(error_rate=1.0)
        with pytest.raises(ApiError) as err:
            client.put_sales_order(FlexyboxClient.sales_order_body(
                ORDER_ID, customer_id="cust-1", department_id=1, gift_certificate_type_id=GAVEKORT, quantity=1,
                price=Decimal("100"), currency="DKK"))
    assert [s for m, _, s in sandbox.state.requests if m == "PUT"][1:] in ([500, 400], [503, 400])
    assert err.value.status == 400 and "GiftCertificates.GiftCertificates[0].Price" in err.value.server_message
    assert err.value.outcome_unknown is True and err.value.earlier_outcome_unknown is True
    assert "attempt 1 may have been carried out: answered 50" in str(err.value)


def test_a_lost_answer_then_flexybox_gone_is_unknown_not_unsent():
    sb = Sandbox(faults=Faults(drop_rate=1.0, only=r"^POST ")).start()
    settings = Settings(token=Secret(sb.token), crm_url=sb.url, pos_url=sb.url, api_url=sb.url, max_attempts=3,
                        connect_timeout=2)
    try:
        with FlexyboxClient(settings, sleep=lambda _: sb.stop()) as client:  # down before the retry
            _open_order(client)
            with pytest.raises(ApiError) as err:
                client.commit_sales_order(ORDER_ID, payment_id="pay-1", amount=Decimal("200"))
    finally:
        sb.stop()
    exc = err.value
    assert exc.status is None and "could not connect" in str(exc)
    assert exc.not_sent is False  # the first attempt did leave...
    assert exc.outcome_unknown is True and exc.earlier_outcome_unknown is True  # ...and may have committed
    assert "gave up after 3 attempts; attempt 1 may have been carried out: the connection closed" in str(exc)
    assert sb.state.counts()["certificates"] == 2


@responses.activate
def test_a_429_before_a_refusal_changes_nothing():
    responses.add(responses.POST, COMMIT, status=429, headers={"Retry-After": "0"}, json={"Message": "slow down"})
    responses.add(responses.POST, COMMIT, status=400, json={"Message": "The payments add up to 90"})
    client = FlexyboxClient(Settings(token=Secret("t"), pos_url=BASE, backoff=0.01), sleep=lambda _: None)
    with pytest.raises(ApiError) as err:
        client.commit_sales_order("o", payment_id="p", amount=Decimal(100))
    assert err.value.status == 400
    assert err.value.outcome_unknown is False and err.value.earlier_outcome_unknown is False  # a 429 did nothing
    assert str(err.value) == "POST /api/v1/salesorders/o/commit answered 400 Bad Request: The payments add up to 90"


@responses.activate
def test_a_5xx_then_an_already_committed_answer_keeps_its_body():
    order = {"Id": "o", "Status": "Committed", "GiftCertificates": [{"Number": "123456789012"}]}
    responses.add(responses.POST, COMMIT, status=502, body="bad gateway")
    responses.add(responses.POST, COMMIT, status=409, json={"Message": "Order has already been committed", "Order": order})
    client = FlexyboxClient(Settings(token=Secret("t"), pos_url=BASE, backoff=0.01), sleep=lambda _: None)
    with pytest.raises(ConflictError) as err:
        client.commit_sales_order("o", payment_id="p", amount=Decimal(100))
    assert err.value.response_body["Order"] == order and err.value.outcome_unknown is True
    assert says_already_committed(err.value)


@pytest.mark.parametrize("status, message, expected", [
    (409, "Sales order 3f2b is already committed.", True),
    (409, "Sales order 3f2b is already committed with payment id(s) ['p']; a different payment cannot be added.", True),
    (400, "The sales order has already been completed", True),
    (422, "ORDER ALREADY PAID", True),
    (409, "Ordren er allerede gennemført", True),
    (400, "Salgsordren er allerede blevet betalt.", True),
    (409, "External payment id 'p' was already used for sales order x", False),
    (409, "Sales order is committed", False),
    (400, "Payments: The payments add up to 90 but the sales order total is 100 DKK.", False),
    (503, "already committed", False),  # not a refusal: a 5xx says nothing about the order
    (404, "already committed", False),
    (409, None, False),
])
def test_says_already_committed(status, message, expected):
    assert says_already_committed(ApiError("x", status=status, server_message=message)) is expected
