"""The sandbox, over real HTTP on 127.0.0.1 (flexybox-api.md parts A, B and D).

Every test starts its own sandbox on a free port and talks to it with
``requests``, as the client will. Bodies are written with simplejson so that
``Decimal`` amounts go over the wire exactly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import simplejson

from flexybulk.sandbox import DEFAULT_TOKEN, Faults, Sandbox, default_catalogue
from flexybulk.sandbox.faults import FaultKind, decide

GAVEKORT = "e2080ad4-3ed0-55aa-bcb6-d5d895186603"
JULEGAVEKORT = "c64d4fab-d517-5859-aa54-af0d23944cd4"


class Api:
    """A ``requests`` session bound to one sandbox, sending JSON via simplejson."""

    def __init__(self, sandbox: Sandbox, token: str | None = DEFAULT_TOKEN) -> None:
        self.url = sandbox.url
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def call(self, method: str, path: str, body=None, **kwargs) -> requests.Response:
        if body is not None:
            kwargs["data"] = simplejson.dumps(body, use_decimal=True).encode("utf-8")
            kwargs.setdefault("headers", {})["Content-Type"] = "application/json"
        return self.session.request(method, self.url + path, timeout=5, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def put(self, path: str, body, **kwargs) -> requests.Response:
        return self.call("PUT", path, body, **kwargs)

    def post(self, path: str, body, **kwargs) -> requests.Response:
        return self.call("POST", path, body, **kwargs)

    def customer(self, customer_id: str = "cust-1") -> requests.Response:
        return self.put(f"/api/v2/customers/{customer_id}", customer_body())

    def commit(self, order_id: str, payment_id: str, amount) -> requests.Response:
        return self.post(f"/api/v1/salesorders/{order_id}/commit", commit_body(payment_id, amount))


def decimal_json(response: requests.Response):
    """The response body with fractional numbers as Decimal, as a careful client reads it."""
    return json.loads(response.text, parse_float=Decimal)


def customer_body(**changes):
    body = {
        "FullName": "Test Person",
        "BirthDate": None,
        "Gender": None,
        "DepartmentId": None,
        "EmailAddress": "test@example.com",
        "PhoneNumber": None,
        "StreetAddress": None,
        "PostalDistrict": None,
        "PostalCode": None,
        "CountryCode": "DK",
    }
    body.update(changes)
    return body


def order_body(order_id: str, *, quantity=1, price=Decimal("100"), type_id=GAVEKORT, **changes):
    """The vendor article's sales order body."""
    body = {
        "GiftDetails": None,
        "Id": order_id,
        "GiftCertificates": {
            "GiftCertificates": [
                {"GiftCertificateTypeId": type_id, "Quantity": quantity, "Price": price, "Checksum": None}
            ]
        },
        "CustomerId": "cust-1",
        "DepartmentId": 1,
        "AcceptUri": None,
        "CancelUri": None,
        "RequireSubscription": False,
        "Currency": "DKK",
        "DebitMethod": "OnlinePayment",
    }
    body.update(changes)
    return body


def commit_body(payment_id, amount):
    """The vendor article's commit body."""
    return {
        "Payments": [
            {
                "AccountFlowId": None,
                "OnlinePaymentKey": None,
                "ExternalPayment": {"Id": payment_id, "Type": "Mastercard", "Amount": amount},
            }
        ]
    }


def new_id() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def sandbox():
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def api(sandbox):
    client = Api(sandbox)
    yield client
    client.session.close()


@pytest.fixture
def open_order(api):
    """A customer and an open order of 3 x 100 DKK; yields the order id."""
    assert api.customer().status_code == 201
    order_id = new_id()
    assert api.put("/api/v1/salesorders", order_body(order_id, quantity=3)).status_code == 201
    return order_id


# -- auth and routing ---------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/api/v1/odata/giftcertificatetypes"),
        ("GET", "/api/v2/departments"),
        ("PUT", "/api/v2/customers/cust-1"),
        ("PUT", "/api/v1/salesorders"),
        ("POST", f"/api/v1/salesorders/{new_id()}/commit"),
        ("GET", "/_sandbox/state"),
    ],
)
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_every_request_without_the_token_gets_401(sandbox, method, path, token):
    body = customer_body() if method != "GET" else None
    response = Api(sandbox, token=token).call(method, path, body)
    assert response.status_code == 401
    assert "bearer token" in response.json()["Message"]
    assert sandbox.state.counts() == {"customers": 0, "orders": 0, "committed_orders": 0, "certificates": 0}


def test_unknown_path_is_404_and_wrong_method_is_405(api):
    assert api.get("/api/v2/nothing").status_code == 404
    response = api.get("/api/v1/salesorders")
    assert response.status_code == 405
    assert response.headers["Allow"] == "PUT"
    assert api.call("DELETE", "/api/v2/departments").status_code == 405


def test_invalid_json_is_400_and_a_non_json_content_type_is_415(sandbox, api):
    json_type = {"Content-Type": "application/json"}
    bad = api.call("PUT", "/api/v2/customers/c", data=b'{"FullName": ', headers=json_type)
    assert bad.status_code == 400
    assert "not valid UTF-8 JSON" in bad.json()["Message"]
    nan = api.call("PUT", "/api/v2/customers/c", data=b'{"FullName": NaN}', headers=json_type)
    assert nan.status_code == 400
    form = api.call("PUT", "/api/v2/customers/c", data={"FullName": "x"})
    assert form.status_code == 415
    assert sandbox.state.counts()["customers"] == 0


def test_connections_are_kept_alive_with_content_length(api):
    first = api.get("/api/v2/departments")
    second = api.get("/api/v2/departments")
    assert first.raw.version == 11
    assert first.headers["Content-Length"] == str(len(first.content))
    assert "close" not in first.headers.get("Connection", "")
    assert second.status_code == 200


# -- catalogue ------------------------------------------------------------------


def test_gift_certificate_types_come_in_an_odata_envelope(sandbox, api):
    response = api.get("/api/v1/odata/giftcertificatetypes")
    assert response.status_code == 200
    body = response.json()
    assert body["@odata.context"] == f"{sandbox.url}/api/v1/odata/$metadata#giftcertificatetypes"
    assert [(t["Id"], t["Name"]) for t in body["value"]] == [
        (GAVEKORT, "Gavekort"),
        (JULEGAVEKORT, "Julegavekort"),
        ("ff689036-26c7-5b7a-b4d5-2791a4b87fb6", "Oplevelsesgavekort"),
        ("6a9dd469-60ed-5762-b109-8643cafdb100", "Firmagavekort"),
    ]


def test_departments_are_a_bare_list_with_numeric_ids(api):
    response = api.get("/api/v2/departments")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    assert response.json() == [
        {"Id": 1, "Name": "Webshop"},
        {"Id": 2, "Name": "København"},
        {"Id": 3, "Name": "Aarhus"},
        {"Id": 4, "Name": "Odense"},
    ]
    assert '"Id": 1,' in response.text  # a JSON number, not "1"


def test_a_custom_catalogue_replaces_the_built_in_one():
    catalogue = {
        "types": [
            {"id": "0b9e0b66-6d3c-4a43-9d0b-1f1f4c1f0001", "name": "Aktiv"},
            {"Id": "0b9e0b66-6d3c-4a43-9d0b-1f1f4c1f0002", "Name": "Udgået", "IsActive": False},
        ],
        "departments": [{"Id": "A-1", "Name": "Butik"}],
    }
    active_id, inactive_id = (item.get("id") or item.get("Id") for item in catalogue["types"])
    with Sandbox(catalogue=catalogue) as sb:
        api = Api(sb)
        assert api.get("/api/v1/odata/giftcertificatetypes").json()["value"] == catalogue["types"]
        assert api.get("/api/v2/departments").json() == catalogue["departments"]
        api.customer()
        inactive = api.put("/api/v1/salesorders", order_body(new_id(), type_id=inactive_id, DepartmentId="A-1"))
        assert inactive.status_code == 400
        assert inactive.json()["Field"] == "GiftCertificates.GiftCertificates[0].GiftCertificateTypeId"
        # Field names in a catalogue item are matched without regard to case ("id").
        active = api.put("/api/v1/salesorders", order_body(new_id(), type_id=active_id, DepartmentId="A-1"))
        assert active.status_code == 201
    assert default_catalogue()["departments"][0] == {"Id": 1, "Name": "Webshop"}


def test_a_malformed_catalogue_is_refused():
    with pytest.raises(ValueError, match="departments"):
        Sandbox(catalogue={"types": []})


# -- customers ------------------------------------------------------------------


def test_customer_put_creates_201_then_updates_200(sandbox, api):
    created = api.customer("cust-1")
    assert created.status_code == 201
    assert created.json()["Id"] == "cust-1"
    assert created.json()["FullName"] == "Test Person"
    updated = api.put("/api/v2/customers/cust-1", customer_body(FullName="Søren Ødegård"))
    assert updated.status_code == 200
    assert sandbox.state.customers["cust-1"]["FullName"] == "Søren Ødegård"
    assert sandbox.state.counts()["customers"] == 1


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"FullName": None}, "FullName"),
        ({"FullName": "   "}, "FullName"),
        ({"FullName": 42}, "FullName"),
        ({"EmailAddress": None}, "EmailAddress"),
        ({"EmailAddress": ""}, "EmailAddress"),
        ({"EmailAddress": "test@example"}, "EmailAddress"),
        ({"EmailAddress": "test@example.com."}, "EmailAddress"),
        ({"EmailAddress": "test person@example.com"}, "EmailAddress"),
    ],
)
def test_customer_put_names_the_field_at_fault(sandbox, api, changes, field):
    response = api.put("/api/v2/customers/cust-1", customer_body(**changes))
    assert response.status_code == 400
    assert response.json()["Field"] == field
    assert sandbox.state.counts()["customers"] == 0


def test_customer_put_without_a_field_at_all_names_it(api):
    body = customer_body()
    del body["EmailAddress"]
    response = api.put("/api/v2/customers/cust-1", body)
    assert (response.status_code, response.json()["Field"]) == (400, "EmailAddress")


# -- sales orders ---------------------------------------------------------------


def test_department_ids_compare_by_json_type(sandbox, api):
    api.customer()
    as_text = api.put("/api/v1/salesorders", order_body(new_id(), DepartmentId="1"))
    assert as_text.status_code == 400
    assert as_text.json()["Field"] == "DepartmentId"
    as_bool = api.put("/api/v1/salesorders", order_body(new_id(), DepartmentId=True))
    assert as_bool.status_code == 400  # True == 1 in Python, but not in JSON
    as_number = api.put("/api/v1/salesorders", order_body(new_id(), DepartmentId=1))
    assert as_number.status_code == 201
    assert as_number.json()["DepartmentId"] == 1
    assert sandbox.state.counts()["orders"] == 1


def _line(**changes):
    line = {"GiftCertificateTypeId": GAVEKORT, "Quantity": 1, "Price": Decimal("100"), "Checksum": None}
    line.update(changes)
    return {"GiftCertificates": [line]}


LINE = "GiftCertificates.GiftCertificates[0]"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"Id": "not-a-guid"}, "Id"),
        ({"Id": "{3f2504e0-4f89-11d3-9a0c-0305e82c3301}"}, "Id"),
        ({"Id": None}, "Id"),
        ({"CustomerId": "nobody"}, "CustomerId"),
        ({"DepartmentId": 99}, "DepartmentId"),
        ({"DepartmentId": None}, "DepartmentId"),
        ({"Currency": "DK"}, "Currency"),
        ({"Currency": "dkk"}, "Currency"),
        ({"GiftCertificates": {"GiftCertificates": []}}, "GiftCertificates.GiftCertificates"),
        ({"GiftCertificates": None}, "GiftCertificates.GiftCertificates"),
        ({"GiftCertificates": _line(GiftCertificateTypeId=str(uuid.UUID(int=0)))}, f"{LINE}.GiftCertificateTypeId"),
        ({"GiftCertificates": _line(Quantity=0)}, f"{LINE}.Quantity"),
        ({"GiftCertificates": _line(Quantity=10_001)}, f"{LINE}.Quantity"),
        ({"GiftCertificates": _line(Quantity=Decimal("1.5"))}, f"{LINE}.Quantity"),
        ({"GiftCertificates": _line(Quantity="2")}, f"{LINE}.Quantity"),
        ({"GiftCertificates": _line(Quantity=True)}, f"{LINE}.Quantity"),
        ({"GiftCertificates": _line(Price=0)}, f"{LINE}.Price"),
        ({"GiftCertificates": _line(Price=Decimal("-100"))}, f"{LINE}.Price"),
        ({"GiftCertificates": _line(Price="100")}, f"{LINE}.Price"),
    ],
)
def test_sales_order_put_names_the_problem_and_field(sandbox, api, changes, field):
    api.customer()
    response = api.put("/api/v1/salesorders", order_body(new_id(), **changes))
    assert response.status_code == 400
    assert response.json()["Field"] == field
    assert response.json()["Message"]
    assert sandbox.state.counts()["orders"] == 0


def test_sales_order_put_answers_the_order(api):
    api.customer()
    order_id = new_id().upper()  # GUIDs are compared without regard to case
    response = api.put("/api/v1/salesorders", order_body(order_id, quantity=2, price=Decimal("499.95")))
    assert response.status_code == 201
    order = decimal_json(response)
    assert order["Id"] == order_id.lower()
    assert order["CustomerId"] == "cust-1"
    assert order["Status"] == "Open"
    assert order["Total"] == Decimal("999.90")
    assert order["Currency"] == "DKK"
    assert order["Lines"] == [
        {"GiftCertificateTypeId": GAVEKORT, "Quantity": 2, "Price": Decimal("499.95"), "Checksum": None}
    ]
    assert order["GiftCertificates"] == [] and order["Payments"] == []


def test_same_order_put_again_is_idempotent_and_a_new_body_updates_an_open_order(sandbox, api, open_order):
    again = api.put("/api/v1/salesorders", order_body(open_order, quantity=3))
    assert again.status_code == 200
    assert sandbox.state.counts()["orders"] == 1
    changed = api.put("/api/v1/salesorders", order_body(open_order, quantity=5))
    assert changed.status_code == 200
    assert decimal_json(changed)["Total"] == Decimal("500")
    assert sandbox.state.orders[open_order]["Total"] == Decimal("500")
    assert sandbox.state.counts()["orders"] == 1


def test_a_committed_order_accepts_the_same_body_but_not_a_changed_one(sandbox, api, open_order):
    assert api.commit(open_order, "pay-1", 300).status_code == 200
    same = api.put("/api/v1/salesorders", order_body(open_order, quantity=3))
    assert same.status_code == 200
    assert same.json()["Status"] == "Committed"
    changed = api.put("/api/v1/salesorders", order_body(open_order, quantity=4))
    assert changed.status_code == 409
    assert sandbox.state.orders[open_order]["Lines"][0]["Quantity"] == 3
    assert sandbox.state.counts()["certificates"] == 3


# -- commit -------------------------------------------------------------------


def test_commit_issues_one_certificate_per_unit_exactly_once(sandbox, api, open_order):
    first = api.commit(open_order, "pay-1", 300)
    assert first.status_code == 200
    order = first.json()
    assert order["Status"] == "Committed"
    numbers = [c["Number"] for c in order["GiftCertificates"]]
    assert len(numbers) == 3 and len(set(numbers)) == 3
    assert all(len(n) == 17 and n.isdigit() for n in numbers)
    assert order["GiftCertificates"][0] == {"Number": numbers[0], "GiftCertificateTypeId": GAVEKORT, "Amount": 100}
    assert order["Payments"][0]["ExternalPayment"]["Id"] == "pay-1"

    repeat = api.commit(open_order, "pay-1", 300)
    assert repeat.status_code == 200
    assert [c["Number"] for c in repeat.json()["GiftCertificates"]] == numbers
    assert sandbox.state.counts() == {"customers": 1, "orders": 1, "committed_orders": 1, "certificates": 3}

    other = api.commit(open_order, "pay-2", 300)
    assert other.status_code == 409
    assert [c["Number"] for c in sandbox.state.certificates] == numbers
    assert sandbox.state.certificates[0] == {
        "Number": numbers[0],
        "SalesOrderId": open_order,
        "GiftCertificateTypeId": GAVEKORT,
        "Amount": Decimal("100"),
        "Currency": "DKK",
        "CustomerId": "cust-1",
    }


def test_payment_total_must_match_the_order_total_exactly(sandbox, api):
    api.customer()
    order_id = new_id()
    api.put("/api/v1/salesorders", order_body(order_id, quantity=2, price=Decimal("499.95")))
    short = api.commit(order_id, "pay-1", Decimal("999.89"))
    assert short.status_code == 400
    assert short.json()["Field"] == "Payments"
    assert "999.89" in short.json()["Message"] and "999.90" in short.json()["Message"]
    assert sandbox.state.counts()["certificates"] == 0
    exact = api.commit(order_id, "pay-1", Decimal("999.90"))
    assert exact.status_code == 200
    assert [c["Amount"] for c in sandbox.state.certificates] == [Decimal("499.95")] * 2


def test_commit_of_an_unknown_order_is_404(api):
    assert api.commit(new_id(), "pay-1", 100).status_code == 404
    assert api.commit("not-a-guid", "pay-1", 100).status_code == 404


@pytest.mark.parametrize(
    "payments, field",
    [
        ({"Payments": []}, "Payments"),
        ({}, "Payments"),
        (commit_body(None, 300), "Payments[0].ExternalPayment.Id"),
        (commit_body("", 300), "Payments[0].ExternalPayment.Id"),
        (commit_body("pay-1", "300"), "Payments[0].ExternalPayment.Amount"),
        ({"Payments": [{"ExternalPayment": None}]}, "Payments[0].ExternalPayment"),
    ],
)
def test_malformed_payments_are_400_and_issue_nothing(sandbox, api, open_order, payments, field):
    response = api.post(f"/api/v1/salesorders/{open_order}/commit", payments)
    assert response.status_code == 400
    assert response.json()["Field"] == field
    assert sandbox.state.counts()["certificates"] == 0


def test_a_payment_id_cannot_pay_two_orders(sandbox, api, open_order):
    assert api.commit(open_order, "pay-1", 300).status_code == 200
    second = new_id()
    api.put("/api/v1/salesorders", order_body(second, quantity=1))
    reused = api.commit(second, "pay-1", 100)
    assert reused.status_code == 409
    assert sandbox.state.orders[second]["Status"] == "Open"
    assert sandbox.state.counts()["certificates"] == 3


def test_concurrent_identical_commits_issue_once(sandbox, api, open_order):
    statuses = []

    def commit():
        statuses.append(Api(sandbox).commit(open_order, "pay-1", 300).status_code)

    threads = [threading.Thread(target=commit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert sandbox.state.counts()["certificates"] == 3


# -- inspection -----------------------------------------------------------------


def test_state_endpoint_reports_counts_and_certificates_as_numbers(sandbox, api):
    api.customer()
    order_id = new_id()
    api.put("/api/v1/salesorders", order_body(order_id, quantity=2, price=Decimal("499.95")))
    api.commit(order_id, "pay-1", Decimal("999.90"))
    response = api.get("/_sandbox/state")
    assert response.status_code == 200
    body = decimal_json(response)
    assert body["counts"] == {"customers": 1, "orders": 1, "committed_orders": 1, "certificates": 2}
    assert [c["Amount"] for c in body["certificates"]] == [Decimal("499.95")] * 2
    assert '"Amount": 499.95' in response.text
    assert body["certificates"][0]["SalesOrderId"] == order_id


def test_request_log_records_method_path_and_status(sandbox, api):
    api.get("/api/v2/departments")
    api.get("/api/v1/odata/giftcertificatetypes?$select=Id")
    api.put("/api/v2/customers/cust-1", customer_body(EmailAddress="bad"))
    api.get("/_sandbox/state")  # the sandbox's own path is not logged
    assert sandbox.state.requests == [
        ("GET", "/api/v2/departments", 200),
        ("GET", "/api/v1/odata/giftcertificatetypes", 200),
        ("PUT", "/api/v2/customers/cust-1", 400),
    ]


def test_reset_forgets_everything_but_never_reuses_a_certificate_number(sandbox, api, open_order):
    first = [c["Number"] for c in api.commit(open_order, "pay-1", 300).json()["GiftCertificates"]]
    sandbox.state.reset()
    assert sandbox.state.counts() == {"customers": 0, "orders": 0, "committed_orders": 0, "certificates": 0}
    assert sandbox.state.requests == []
    api.customer()
    order_id = new_id()
    api.put("/api/v1/salesorders", order_body(order_id, quantity=1))
    again = api.commit(order_id, "pay-1", 100).json()["GiftCertificates"][0]["Number"]
    assert again not in first


def test_stop_closes_the_port_and_kept_alive_connections():
    sb = Sandbox().start()
    api = Api(sb)
    assert api.get("/api/v2/departments").status_code == 200
    sb.stop()
    with pytest.raises(requests.ConnectionError):
        api.get("/api/v2/departments")
    sb.stop()  # a second stop is harmless


def test_serve_forever_serves_until_stopped_from_another_thread():
    sb = Sandbox()
    server = threading.Thread(target=sb.serve_forever)
    server.start()
    assert Api(sb).get("/api/v2/departments").status_code == 200
    sb.stop()
    server.join(timeout=2)
    assert not server.is_alive()


def test_serve_forever_ends_cleanly_on_ctrl_c():
    script = (
        "from flexybulk.sandbox import Sandbox\n"
        "sb = Sandbox()\n"
        "print(sb.url, flush=True)\n"
        "sb.serve_forever()\n"
        "print('returned', flush=True)\n"
    )
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        url = process.stdout.readline().strip()
        response = requests.get(url + "/api/v2/departments", headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"})
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
    assert (process.returncode, out, err) == (0, "returned\n", "")


# -- faults -------------------------------------------------------------------


def test_a_dropped_response_still_does_the_work(sandbox, api):
    sandbox.faults = Faults(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.customer("cust-1")
    assert sandbox.state.counts()["customers"] == 1
    assert sandbox.state.requests == [("PUT", "/api/v2/customers/cust-1", None)]
    sandbox.faults = Faults()
    assert api.customer("cust-1").status_code == 200  # an update: the first PUT did happen


def test_a_dropped_commit_has_issued_the_certificates(sandbox, api, open_order):
    sandbox.faults = Faults(drop_rate=1.0)
    with pytest.raises(requests.ConnectionError):
        api.commit(open_order, "pay-1", 300)
    assert sandbox.state.counts()["certificates"] == 3
    sandbox.faults = Faults()
    retry = api.commit(open_order, "pay-1", 300)  # the safe retry: same payment id
    assert retry.status_code == 200
    assert sandbox.state.counts()["certificates"] == 3


def test_rate_limited_calls_carry_retry_after_and_do_nothing(sandbox, api):
    sandbox.faults = Faults(rate_limit_rate=1.0, retry_after=7)
    response = api.customer()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert sandbox.state.counts()["customers"] == 0
    assert sandbox.state.requests == [("PUT", "/api/v2/customers/cust-1", 429)]


def test_server_errors_do_no_work_and_split_between_500_and_503(sandbox, api):
    sandbox.faults = Faults(error_rate=1.0, seed=3)
    statuses = {api.customer(f"cust-{i}").status_code for i in range(20)}
    assert statuses == {500, 503}
    assert sandbox.state.counts()["customers"] == 0


def test_faults_never_touch_the_state_endpoint(sandbox, api):
    sandbox.faults = Faults(error_rate=0.5, drop_rate=0.5, latency=0.5)
    started = time.monotonic()
    assert [api.get("/_sandbox/state").status_code for _ in range(5)] == [200] * 5
    assert time.monotonic() - started < 0.5
    assert sandbox.state.requests == []


def test_latency_delays_every_call_and_concurrent_calls_overlap(sandbox):
    sandbox.faults = Faults(latency=0.3)
    started = time.monotonic()
    assert Api(sandbox).get("/api/v2/departments").status_code == 200
    assert time.monotonic() - started >= 0.3

    started = time.monotonic()
    threads = [threading.Thread(target=Api(sandbox).get, args=("/api/v2/departments",)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 0.9  # serialised, four calls would take 1.2 s
    assert len(sandbox.state.requests) == 5


def _statuses(faults: Faults, count: int = 30) -> list[int]:
    with Sandbox(faults=faults) as sb:
        api = Api(sb)
        return [api.get("/api/v2/departments").status_code for _ in range(count)]


def test_the_same_seed_gives_the_same_faults():
    faults = Faults(error_rate=0.3, rate_limit_rate=0.3, seed=42)
    first = _statuses(faults)
    assert first == _statuses(faults)
    assert {200, 429} <= set(first) and set(first) & {500, 503}
    assert first != _statuses(Faults(error_rate=0.3, rate_limit_rate=0.3, seed=43))


def test_setting_faults_restarts_the_seeded_sequence(sandbox, api):
    faults = Faults(error_rate=0.5, seed=9)
    sandbox.faults = faults
    first = [api.get("/api/v2/departments").status_code for _ in range(10)]
    sandbox.faults = faults
    assert [api.get("/api/v2/departments").status_code for _ in range(10)] == first


def test_decide_splits_one_draw_into_exclusive_outcomes():
    class Fixed:
        def __init__(self, value):
            self.value = value

        def random(self):
            return self.value

    faults = Faults(error_rate=0.2, rate_limit_rate=0.2, drop_rate=0.2)
    assert [decide(faults, Fixed(v)) for v in (0.05, 0.15, 0.25, 0.45, 0.65)] == [
        FaultKind.ERROR_500,
        FaultKind.ERROR_503,
        FaultKind.RATE_LIMITED,
        FaultKind.DROPPED,
        FaultKind.NONE,
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_rate": 1.5},
        {"drop_rate": -0.1},
        {"error_rate": 0.6, "drop_rate": 0.6},
        {"latency": -1},
        {"retry_after": -1},
    ],
)
def test_impossible_faults_are_refused(kwargs):
    with pytest.raises(ValueError):
        Faults(**kwargs)


def test_state_answers_are_copies_and_an_answer_leaves_in_one_segment(sandbox, api):
    """The sandbox's cheaper copies (issue #4) are still deep: editing an answer changes nothing inside."""
    import socket

    from flexybulk.sandbox.state import SandboxState

    state = SandboxState()
    state.put_customer("c1", {"FullName": "A B", "EmailAddress": "a@example.com"})
    state.customers["c1"]["FullName"] = "changed"
    types = state.types
    types[0]["Name"] = "changed"
    assert state.customers["c1"]["FullName"] == "A B" and state.types[0]["Name"] != "changed"
    # Status line, headers and body go out in one write (buffered), so one recv sees the whole answer.
    host, port = sandbox.url[7:].split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"GET /api/v2/departments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DEFAULT_TOKEN}\r\n\r\n".encode())
        s.settimeout(5)
        data = s.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1])
    assert head.startswith(b"HTTP/1.1 200") and len(body) == length and json.loads(body) == default_catalogue()["departments"]


def test_a_sandbox_started_later_never_hands_out_an_earlier_ones_numbers(monkeypatch):
    """A fresh user's find: a restarted `web --sandbox` numbered from 100000000001 again, so a batch finished
    across the restart listed 6,000 numbers of which 3,012 were distinct (it read as a double issue)."""
    from flexybulk.sandbox import state as state_module
    from flexybulk.sandbox.state import SandboxState

    def issue(state):
        order_id = new_id()
        assert state.put_customer("cust-1", customer_body())[0] in (200, 201)
        assert state.put_order(order_body(order_id, quantity=3))[0] in (200, 201)
        assert state.commit_order(order_id, commit_body("pay-1", Decimal("300")))[0] == 200
        return [c["Number"] for c in state.certificates]

    clock = [1_796_000_000.2]
    monkeypatch.setattr(state_module.time, "time", lambda: clock[0])
    first = issue(SandboxState())
    clock[0] += 1  # restarted a second later
    second = issue(SandboxState())
    assert len(first) == len(second) == 3 and not set(first) & set(second)
    assert first == ["17960000000000001", "17960000000000002", "17960000000000003"]
