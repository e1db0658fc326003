"""The error tree every layer raises, and the exit codes the CLI maps them to."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # an expected failure: bad input, missing object, failing check
    USAGE = 2  # the command line itself is wrong
    BUG = 3  # an unexpected exception: a moma bug
    INTERRUPTED = 130


class MomaError(Exception):
    """An expected failure, shown to the user as one line plus an optional hint."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class NotARepoError(MomaError):
    pass


class ConfigError(MomaError):
    pass


class PointerError(MomaError):
    pass


class YamlError(MomaError):
    pass


POINTER_HINT = ("restore the pointer with 'git checkout -- PATH.moma', or run 'moma add PATH' "
                "to write it again")


class PathError(MomaError):
    pass


class ObjectMissingError(MomaError):
    pass


class HashMismatchError(MomaError):
    pass


class RemoteError(MomaError):
    pass


class PackIndexError(MomaError):
    """A pack index on a remote that cannot be trusted; the pack is ignored."""


class LockedError(MomaError):
    pass


class GitError(MomaError):
    pass


class CheckoutConflictError(MomaError):
    pass


class GcError(MomaError):
    pass


class NoSpaceError(MomaError):
    pass
