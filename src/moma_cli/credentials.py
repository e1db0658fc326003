"""What counts as a credential, and hiding one in text: the rules every layer shares.

Configuration refuses credentials in files (`config.py`), every message that leaves moma
goes through `redact` (a library's error may quote a URL with a password in it, or an
environment value), and the DVC importer drops the options these rules name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# Keys that would put a secret in a file; credentials come from the environment or the
# AWS credential chain instead, or, for the S3 ones, the git-ignored .moma.local.yaml.
SECRET_OPTIONS = ("access_key_id", "secret_access_key", "session_token", "password", "key",
                  "secret")
LOCAL_CREDENTIALS = ("access_key_id", "secret_access_key", "session_token")
# Words that mark a key anywhere in the committed .moma.yaml as a credential. Whole words of
# the key only ('max_tokens' is a hyperparameter, 'token' is a secret).
_SECRET_WORDS = {"secret", "password", "passwd", "token", "apikey", "credentials", "credential"}
_SECRET_KEY_RE = re.compile(r"(access|private|api|secret)[_-]?key(_id)?", re.IGNORECASE)
CREDENTIALS_IN_URL = re.compile(r"^[a-z0-9+.-]+://[^/@]*:[^/@]*@", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(://)[^/@\s]*@")
# Environment variables whose values must never be printed, even inside a library's error.
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
               "AWS_ACCESS_KEY_ID", "MOMA_SERVE_ADMIN_TOKEN")


def is_secret_key(key: object) -> bool:
    text = str(key).lower()
    words = set(re.split(r"[_.\-]", text))
    return bool(words & _SECRET_WORDS) or _SECRET_KEY_RE.fullmatch(text) is not None


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """`text` with URL credentials and the values of secret environment variables as ****."""
    env = os.environ if environ is None else environ
    text = redact_url(text)
    for var in _SECRET_ENV:
        value = env.get(var)
        if value and len(value) >= 4:
            text = text.replace(value, "****")
    return text


def redact_url(url: str) -> str:
    return _URL_USERINFO.sub(r"\1****@", url)
