"""Run the real CLI entry point (with its error boundary) and capture what a user sees."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from flexybulk.cli import main


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def flexybulk(*args: str, input: str | None = None) -> Run:
    """``flexybulk ARGS`` in-process, as ``main`` runs it (exit code, stdout, stderr)."""
    runner = CliRunner()
    with runner.isolation(input=input) as (out, err, _):
        code = main([str(a) for a in args])
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return Run(code, stdout, stderr)
