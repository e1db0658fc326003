"""Everything moma asks of git, in one package: every git command line moma builds lives
here (and `tests/test_architecture.py` keeps GitPython's import in `clone.py`).

`Git` is one repository's git, assembled from one part per job: `index` (the work tree
and the index), `objects` (blobs and trees), `history` (commits), `remotes` (git remotes),
`worktrees` (experiment work trees), `refs` (hidden refs, branches), `tags` (the registry's
annotated tags), `lfs` (git-lfs) and `clone` (source repositories, with GitPython), all on
`runner.Runner` (the command line and the environment git gets).
"""

from __future__ import annotations

from moma_cli.gitrepo.clone import Clone
from moma_cli.gitrepo.index import Index
from moma_cli.gitrepo.lfs import Lfs
from moma_cli.gitrepo.objects import Objects
from moma_cli.gitrepo.refs import RefCommit, Refs
from moma_cli.gitrepo.remotes import Remotes
from moma_cli.gitrepo.runner import find_root, git_version, no_git_env
from moma_cli.gitrepo.tags import AnnotatedTag, Tags
from moma_cli.gitrepo.worktrees import Worktrees

__all__ = ["AnnotatedTag", "Git", "RefCommit", "find_root", "git_version", "no_git_env"]


class Git(Clone, Index, Objects, Remotes, Worktrees, Refs, Tags, Lfs):
    """One repository's git (`Repo.git`)."""
