"""A non-editable ``pip install .`` ships the web page's templates and static files (package data, issue #14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import REPO

WEB = REPO / "flexybulk" / "web"


def test_pip_install_ships_the_templates_and_static_files(tmp_path):
    target = tmp_path / "site"
    # As a user's `pip install .` does (build isolation, the build tools from the package index); --no-deps: only this package.
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                    "--target", str(target), str(REPO)], check=True, capture_output=True, timeout=300, cwd=tmp_path)
    installed = target / "flexybulk" / "web"
    wanted = sorted(p.relative_to(WEB).as_posix() for p in WEB.rglob("*") if p.parent.name in ("templates", "static"))
    assert "static/htmx.min.js" in wanted and "static/htmx-LICENSE.txt" in wanted and "templates/base.html" in wanted
    shipped = sorted(p.relative_to(installed).as_posix() for p in installed.rglob("*") if p.parent.name in ("templates", "static"))
    assert shipped == wanted
    # And the installed copy renders a page from its own templates (not from this checkout).
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import flexybulk.web.app as a; "
            "print(a.HERE); import jinja2; e = jinja2.Environment(loader=jinja2.FileSystemLoader(str(a.HERE / 'templates'))); "
            "print(e.get_template('login.html').filename)")
    out = subprocess.run([sys.executable, "-c", code, str(target)], check=True, capture_output=True, text=True, cwd=tmp_path).stdout
    assert out.splitlines()[0] == str(installed)
    assert out.splitlines()[1] == str(installed / "templates" / "login.html")
