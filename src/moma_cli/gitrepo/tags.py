"""Annotated tags: the model registry's stages and versions (GTO's tags)."""

from __future__ import annotations

from collections.abc import Callable
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

    def tag_ids(self) -> list[tuple[str, str]]:
        """(name, object id) of every tag under refs/tags, sorted by name: read from the
        refs alone (packed-refs), without opening a tag object, so 30,000 tags take
        ~0.02 s where reading the tag objects takes ~0.3 s."""
        return [(ref.removeprefix("refs/tags/"), oid) for oid, _, ref in
                (line.partition(" ") for line in
                 self._tag_listing().decode("utf-8", "replace").split("\n")) if ref]

    def tag_listing_digest(self) -> str:
        """A digest of the listing `tag_ids` reads: a tag made, moved or deleted by any
        means changes it (a tag object's id names its content)."""
        import hashlib  # OpenSSL's loader: 2.5 ms of every hook command otherwise

        return hashlib.sha256(self._tag_listing()).hexdigest()

    def _tag_listing(self) -> bytes:
        # `show-ref`, not `for-each-ref --format`: the same lines (id, then ref name,
        # sorted by name) in 0.02 s instead of 0.08 s for 30,000 packed tags. It exits
        # 1 when there is no tag at all.
        return self.run("show-ref", "--tags", check=False)

    def start_tag_objects(self) -> Callable[[], list[tuple[str, str, AnnotatedTag | None]]]:
        """Start one `git for-each-ref` of every tag under refs/tags; call the result for
        (name, object id, what the tag says) of each, None for a lightweight tag or one
        that does not point straight at a commit."""
        started = self.start(
            "for-each-ref", "refs/tags",
            "--format=%(refname:lstrip=2)%1f%(objectname)%1f%(objecttype)%1f%(*objecttype)"
            "%1f%(*objectname)%1f%(taggername)%1f%(taggeremail:trim)%1f%(taggerdate:iso-strict)"
            "%1f%(contents:subject)%1f%(contents:trailers:unfold,separator=%x1e)")
        return lambda: _annotated_tags(started.output())

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


def _annotated_tags(out: bytes) -> list[tuple[str, str, AnnotatedTag | None]]:
    tags: list[tuple[str, str, AnnotatedTag | None]] = []
    for line in out.decode("utf-8", "replace").split("\n"):  # not splitlines(): \x1e
        if not line:
            continue
        name, oid, kind, target, commit, author, email, date, subject, trailers = (
            line.split("\x1f") + [""] * 10)[:10]
        tag = None
        if kind == "tag" and target == "commit" and commit:
            tag = AnnotatedTag(name, commit, author, email, date, subject,
                               parse_trailers(trailers) if trailers else ())
        tags.append((name, oid, tag))
    return tags
