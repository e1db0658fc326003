"""Talking to git remotes: their URLs, the rest of a shallow history, refs across."""

from __future__ import annotations

from collections.abc import Sequence

from moma_cli.gitrepo.runner import Runner, check_remote


class Remotes(Runner):
    """`Git`'s part for git remotes."""

    def remote_url(self, name: str) -> str | None:
        out = self.run("remote", "get-url", name, check=False).strip()
        return out.decode("utf-8", "replace") or None

    def unshallow(self, remote: str) -> None:
        """Fetch the rest of the history of a shallow clone, and every tag (a single-branch
        clone would not follow tags on other branches). Never prompts: a read command must
        not hang on a password question (it fails, and the caller says what to run)."""
        self.run("fetch", "--quiet", "--unshallow", "--tags", remote,
                 env={"GIT_TERMINAL_PROMPT": "0"})

    def remote_refs(self, remote: str, prefix: str) -> dict[str, str]:
        """ref -> sha of what git remote `remote` has under `prefix` (`git ls-remote`)."""
        out = self.run("ls-remote", "--refs", check_remote(remote), prefix + "*",
                       env={"GIT_TERMINAL_PROMPT": "0"}).decode("utf-8", "replace")
        pairs = (line.split("\t", 1) for line in out.splitlines() if "\t" in line)
        return {ref: sha for sha, ref in pairs}

    def fetch_refs(self, remote: str, refs: Sequence[str]) -> None:
        """Fetch `refs` to the same names here; an existing ref is only fast-forwarded."""
        if refs:
            self.run("fetch", "--quiet", "--no-tags", check_remote(remote),
                     *(f"{ref}:{ref}" for ref in refs), env={"GIT_TERMINAL_PROMPT": "0"})

    def push_refs(self, remote: str, refs: Sequence[str]) -> None:
        """Push `refs` to the same names on `remote`; no hook runs (the data went first)."""
        if refs:
            self.run("push", "--quiet", "--no-verify", check_remote(remote),
                     *(f"{ref}:{ref}" for ref in refs), env={"GIT_TERMINAL_PROMPT": "0"})
