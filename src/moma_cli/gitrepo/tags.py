"""Annotated tags: the model registry's stages and versions (GTO's tags)."""

from __future__ import annotations

from dataclasses import dataclass

from moma_cli.gitrepo.runner import Runner, parse_trailers


@dataclass(frozen=True)
class AnnotatedTag:
    name: str
    commit: str  # the commit it points at
    author: str
    email: str
    date: str  # ISO 8601
    subject: str
    trailers: tuple[tuple[str, str], ...] = ()  # `Key: value` lines closing the message


class Tags(Runner):
    """`Git`'s part for the registry's tags."""

    def tag_names(self) -> list[str]:
        return self.run("for-each-ref", "--format=%(refname:lstrip=2)",
                        "refs/tags").decode("utf-8", "replace").split()

    def annotated_tags(self) -> list[AnnotatedTag]:
        """Every tag under refs/tags in one `git for-each-ref`; `commit` is empty for a
        lightweight tag or one that does not point straight at a commit."""
        out = self.run(
            "for-each-ref", "refs/tags",
            "--format=%(refname:lstrip=2)%1f%(objecttype)%1f%(*objecttype)%1f%(*objectname)"
            "%1f%(taggername)%1f%(taggeremail:trim)%1f%(taggerdate:iso-strict)"
            "%1f%(contents:subject)%1f%(contents:trailers:unfold,separator=%x1e)"
        ).decode("utf-8", "replace")
        tags = []
        for line in out.split("\n"):  # not splitlines(): it also splits at the \x1e
            name, kind, target, commit, author, email, date, subject, trailers = (
                line.split("\x1f") + [""] * 9)[:9]
            if kind == "tag" and target == "commit" and commit:
                tags.append(AnnotatedTag(name, commit, author, email, date, subject,
                                         parse_trailers(trailers)))
        return tags

    def committer(self) -> str:
        """`Name <email>` of who git records as making a tag or commit here."""
        ident = self.run("var", "GIT_COMMITTER_IDENT").decode("utf-8", "replace").strip()
        return ident.rsplit(" ", 2)[0]  # without the timestamp and time zone

    def create_tag(self, name: str, commit: str, message: str) -> bool:
        """An annotated tag; False (nothing written) when the name is taken."""
        if self.ok("rev-parse", "--verify", "-q", f"refs/tags/{name}"):
            return False
        self.run("tag", "-a", "-m", message, name, commit)
        return True
