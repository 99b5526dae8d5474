"""A local emulator of the three Flexybox hosts, for tests, dry runs and benchmarks.

One :class:`Sandbox` serves the CRM, POS and general API paths on one
loopback base URL, behaving as ``shared/flexybox-api.md`` parts A and B say
(part B fixes what the vendor article leaves open) with the built-in
catalogue of part D (or another one, with rules such as a type's maximum
price: :func:`with_rules`, :func:`load_catalogue`), and can inject faults on
demand (:class:`Faults`), refusals included::

    from flexybulk.sandbox import Sandbox, Faults

    with Sandbox(faults=Faults(drop_rate=0.1, seed=1)) as sb:
        ...  # point the client at sb.url with token sb.token
        assert sb.state.counts()["certificates"] == 3

Modules: ``state`` (customers, orders, certificates; no HTTP), ``rules``
(what a request body must satisfy, catalogue rules included),
``server`` (HTTP handler, routing, auth, the ``Sandbox`` lifecycle),
``faults`` (what to inject and the seeded decision), ``catalogue``.
"""

from .catalogue import default_catalogue, load_catalogue, with_rules
from .faults import Faults
from .server import DEFAULT_TOKEN, Sandbox
from .state import SandboxState

__all__ = ["DEFAULT_TOKEN", "Faults", "Sandbox", "SandboxState", "default_catalogue", "load_catalogue", "with_rules"]
