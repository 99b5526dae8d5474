"""The web page: the second face over :mod:`flexybulk.batches`, for people who upload spreadsheets (issue #14).

Served by ``flexybulk web`` (uvicorn + Starlette, Jinja2 templates, htmx).
Modules, each owning one thing:

- ``app``         settings, the views' shared context, rendering, login and language, :func:`create_app`
- ``views_sheet`` upload, check (the dry run), cell fixes, the template
- ``views_batch`` confirm and approve, progress, result and retry, history
- ``jobs``        the issuing queue: one batch at a time per ledger, previews, stop, resume
- ``store``       uploads on disk (owner-only), their fixes, remembered column mappings
- ``auth``        users, roles, argon2 passwords, sessions, the trusted proxy header
- ``security``    cross-site refusal, body size limit before reading, login required, security headers
- ``i18n``        Danish and English

No rule about money lives here: every figure shown comes from the library.
"""

from .app import WebConfig, create_app

__all__ = ["WebConfig", "create_app"]
