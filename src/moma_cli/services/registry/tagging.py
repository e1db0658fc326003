"""Stages, semver registrations and deprecation as GTO tags: assign (`NAME#STAGE#N`),
unassign (`NAME#STAGE!#N`), register (`NAME@v1.2.0`) and deprecate (`NAME@deprecated#N`),
each on a committed version. A stage is assigned only to a version that passes the model's
blocking quality gates (services/checks.py::gate), unless forced with a reason, which the
tag records. A new stage or semver also sends that version's data to the default remote
(services/sync/pushing.py::publish)."""

from __future__ import annotations

from dataclasses import dataclass

from moma_cli.core import refs, tags
from moma_cli.services.checks import ConditionResult, gate
from moma_cli.services.registry.index import full_history
from moma_cli.services.registry.model_version import ModelError, ModelVersion
from moma_cli.services.registry.reading import load
from moma_cli.services.registry.resolving import resolve
from moma_cli.services.repo import Repo
from moma_cli.services.sync.pushing import publish
from moma_cli.services.sync.results import TransferResult

# -- stages, semver registrations, deprecation ----------------------------------------------


@dataclass
class TagResult:
    created: list[str]
    version: ModelVersion
    pushed: TransferResult | None = None  # None: no default remote, or nothing to publish
    override: tags.Override | None = None  # forced past failing blocking conditions


def tag(repo: Repo, ref: str, stage: str, *, force: str | None = None,
        reason: str | None = None) -> TagResult:
    """Assign `stage` to a committed version: a new `NAME#STAGE#N` tag (history kept).

    The model's blocking conditions must pass on the version's own metrics; `force` (the
    reason) tags anyway and records who forced it, why, and which conditions failed.
    `reason` is recorded the same way even when nothing failed (a rollback says why)."""
    stage = _allowed(repo, refs.check_name(stage, "stage name"))
    version = _committed(repo, ref)
    failed = gate(repo, version)
    if failed and force is None:
        raise _refusal(ref, stage, version, failed)
    name = tags.assign(version.name, stage, tags.next_counter(repo.git.tag_names(),
                                                               version.name))
    subject = (f"Assigning stage '{stage}' to artifact '{version.name}' "
               f"version '{_gto_version(version)}'")
    why = reason or force or ""
    override = tags.Override(repo.git.committer(), tags.one_line(why), tuple(
        f"{c.condition} ({c.message})" for c in failed)) if failed or reason else None
    _create_tag(repo, name, version.commit or "",
                override.message(subject) if override else subject)
    return _published(repo, TagResult([name], resolve(repo, ref), override=override))


def _allowed(repo: Repo, stage: str) -> str:
    allowed = repo.config.stages
    if allowed and stage not in allowed:
        raise ModelError(f"stage {stage!r} is not allowed by registry.stages in .moma.yaml",
                         hint=f"use one of {', '.join(allowed)}, or add {stage!r} there")
    return stage


def _refusal(ref: str, stage: str, version: ModelVersion,
             failed: list[ConditionResult]) -> ModelError:
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    first = failed[0]
    return ModelError(
        f"{version.name} {version.label} fails the blocking condition {first.condition} of "
        f".moma.yaml ({first.message}){more}; not tagged {stage}",
        hint=f"see 'moma check {version.name}:{version.number}'; to tag it anyway: "
             f"moma models:tag {ref} {stage} --force -m 'why'")


def untag(repo: Repo, name: str, stage: str) -> TagResult:
    """Remove `stage` from every version holding it: `NAME#STAGE!#N` tags, GTO's unassign."""
    name = refs.check_name(name)
    stage = refs.check_name(stage, "stage name")
    registry = load(repo, workspace=False)
    # every version where the stage is still active, or an older assignment would
    # take the stage back once the newest is unassigned
    holders = [v for v in registry.of(name) if stage in v.active_stages]
    if not any(stage in v.stages for v in holders):
        raise ModelError(f"no version of {name} is in stage {stage!r}",
                         hint=f"see 'moma models:list' for the stages of {name}")
    created = []
    for version in holders:
        tag_name = tags.unassign(name, stage, tags.next_counter(repo.git.tag_names(), name))
        _create_tag(repo, tag_name, version.commit or "",
                    f"Unassigning stage '{stage}' to artifact '{name}' "
                    f"version '{_gto_version(version)}'")
        created.append(tag_name)
    return TagResult(created, resolve(repo, f"{name}:{holders[-1].version}"))


def register(repo: Repo, ref: str, semver: str | None = None) -> TagResult:
    """Give a committed version a semver: the GTO registration tag `NAME@v1.2.0`."""
    version = _committed(repo, ref)
    registry = load(repo, workspace=False)
    taken = {s: v for v in registry.of(version.name) for s in v.semvers}
    semver = semver or _bump(list(taken))
    if not refs.SEMVER_RE.fullmatch(semver):
        raise ModelError(f"invalid semver {semver!r}", hint="write it like v1.2.0")
    if semver in taken:
        raise ModelError(f"{version.name} {semver} is already registered "
                         f"(version {taken[semver].version})",
                         hint="pick the next semver, e.g. " + _bump(list(taken)))
    if version.semvers:
        raise ModelError(f"{version.name}:{version.version} is already registered as "
                         f"{version.semvers[0]}")
    name = tags.register(version.name, semver)
    _create_tag(repo, name, version.commit or "",
                f"Registering artifact '{version.name}' version '{semver}'")
    return _published(repo, TagResult([name], resolve(repo, ref)))


def deprecate(repo: Repo, name: str) -> TagResult:
    """Retire a model: GTO's `NAME@deprecated#N` on its latest version, which hides it from
    `models:list` (and `gto show`)."""
    name = refs.check_name(name)
    full_history(repo, "writing a registry tag")
    registry = load(repo, workspace=False)
    latest = registry.of(name)[-1]
    if registry.deprecated(name):
        raise ModelError(f"{name} is deprecated already",
                         hint=f"see 'moma models:history {name}'")
    tag_name = tags.deprecate(name, tags.next_counter(repo.git.tag_names(), name))
    _create_tag(repo, tag_name, latest.commit or "", f"Deprecating artifact '{name}'")
    return TagResult([tag_name], latest)


def _published(repo: Repo, result: TagResult) -> TagResult:
    """The tag stands whatever the push does: the registry must not point at data nobody
    can download, but a remote being down is reported (result.pushed), never raised."""
    result.pushed = publish(repo, result.version)
    return result


def _committed(repo: Repo, ref: str) -> ModelVersion:
    """The version a new tag goes on. The whole history first, even for `NAME:production`:
    a tag's GTO counter must exceed every tag's and a semver must be new, and a shallow
    clone lacks the tags on the commits it does not have."""
    refs.parse(ref)  # before any git call
    full_history(repo, "writing a registry tag")
    version = resolve(repo, ref)
    if version.commit is None:
        raise ModelError(f"{version.name} {version.label} is not committed yet",
                         hint="commit its pointer first: git commit -m '...'")
    return version


def _gto_version(version: ModelVersion) -> str:
    return version.semvers[0] if version.semvers else version.commit or ""


def _bump(semvers: list[str]) -> str:
    if not semvers:
        return "v0.0.1"
    parts = max(tuple(int(x) for x in s[1:].split("-")[0].split("+")[0].split("."))
                for s in semvers)
    return f"v{parts[0]}.{parts[1]}.{parts[2] + 1}"


def _create_tag(repo: Repo, name: str, commit: str, message: str) -> None:
    if not repo.git.create_tag(name, commit, message):
        raise ModelError(f"tag {name!r} already exists")
