"""What a model file is, learned without ever executing it.

The content encoding comes from magic bytes. The algorithm of a pickle (joblib's default
uncompressed format is a pickle too) comes from reading its opcodes with `pickletools`: a
small symbolic stack machine follows GLOBAL/STACK_GLOBAL, REDUCE, NEWOBJ and BUILD to the
object left on the stack at STOP. Nothing is imported and nothing is called, so a
malicious pickle is inspected as safely as a text file.
"""

from __future__ import annotations

import pickletools
import struct
from typing import IO, Any

UNKNOWN = "unknown"
HEAD_BYTES = 64
_COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bz2", b"\xfd7zXZ": "xz", b"\x04\x22\x4d\x18": "lz4"}
_ZLIB_SECOND = (b"\x01", b"\x5e", b"\x9c", b"\xda")


def encoding_of(head: bytes, suffix: str = "") -> str:
    """joblib | pickle | onnx | pytorch | safetensors | hdf5 | zip | plain (or a
    compression name for a compressed file that is not recognisably joblib)."""
    suffix = suffix.lower()
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "joblib" if suffix == ".joblib" else "pickle"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"PK\x03\x04"):
        name_len = struct.unpack("<H", head[26:28])[0] if len(head) >= 30 else 0
        first = head[30:30 + name_len]
        return "pytorch" if first.endswith(b"data.pkl") or suffix in (".pt", ".pth") else "zip"
    if _is_safetensors(head):
        return "safetensors"
    if head[:1] == b"x" and head[1:2] in _ZLIB_SECOND:
        return "joblib"  # joblib's compress=True default is zlib
    for magic, name in _COMPRESSED.items():
        if head.startswith(magic):
            return "joblib" if suffix == ".joblib" else name
    if _is_onnx(head, suffix):
        return "onnx"
    return "plain"


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 10:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return 2 <= header_len < 100 * 1024 * 1024 and head[8:10] in (b'{"', b"{ ", b"{\n")


def _is_onnx(head: bytes, suffix: str) -> bool:
    # ModelProto starts with field 1 (ir_version, a small varint), then usually field 2,
    # the producer name ("pytorch", "skl2onnx", ...).
    if suffix == ".onnx":
        return True
    return (len(head) > 4 and head[0] == 0x08 and 1 <= head[1] <= 20 and head[2] == 0x12
            and 0 < head[3] < 64 and head[4:4 + min(head[3], 8)].isascii())


def sniff(path: str) -> tuple[str, str]:
    """(encoding, algo) of the file at `path`; algo is 'unknown' when it cannot be read."""
    import os

    suffix = os.path.splitext(path)[1]
    with open(path, "rb") as fh:
        encoding = encoding_of(fh.read(HEAD_BYTES), suffix)
        if encoding == "zip":
            schema = skops_schema(fh)
            if schema is not None:
                return "skops", str(schema.get("__class__") or UNKNOWN)
        if encoding not in ("pickle", "joblib"):
            return encoding, UNKNOWN
        fh.seek(0)
        head = fh.read(2)
        fh.seek(0)
        if head[:1] != b"\x80":
            return encoding, UNKNOWN  # compressed joblib: would need decompressing
        algo, joblib_wrapped = read_pickle(_Bounded(fh, os.fstat(fh.fileno()).st_size))
        return ("joblib" if joblib_wrapped else encoding), (algo or UNKNOWN)


_SCHEMA_LIMIT = 64 << 20  # a skops schema is JSON text; larger is no model of ours


def skops_schema(fh: IO[bytes]) -> dict[str, Any] | None:
    """The `schema.json` of a skops archive (what it holds, as JSON: read, never run), or
    None when the zip is not one."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(fh) as archive:
            info = archive.getinfo("schema.json")
            if info.file_size > _SCHEMA_LIMIT:
                return None
            doc = json.loads(archive.read(info))
    except (KeyError, OSError, ValueError, RecursionError, zipfile.BadZipFile,
            NotImplementedError, EOFError):
        return None
    return doc if isinstance(doc, dict) and "__class__" in doc else None


def skops_signature(schema: dict[str, Any]) -> dict[str, Any] | None:
    """`{"n_features": N}` from a skops schema's `n_features_in_` attribute, if it has one."""
    attributes = schema.get("content", {})
    attributes = attributes.get("content", {}) if isinstance(attributes, dict) else {}
    node = attributes.get("n_features_in_") if isinstance(attributes, dict) else None
    content = node.get("content") if isinstance(node, dict) else None
    try:
        return {"n_features": int(str(content))} if content is not None else None
    except ValueError:
        return None


class _Bounded:
    """A file whose reads never ask for more than is left: a hostile 20-byte pickle whose
    BINBYTES8 opcode claims 8 GiB would otherwise make the buffered reader allocate it."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self.fh = fh
        self.size = size

    def read(self, n: int = -1) -> bytes:
        left = max(0, self.size - self.fh.tell())
        return self.fh.read(left if n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self.fh.readline(1 << 20)

    def tell(self) -> int:
        return self.fh.tell()


class _Global:
    def __init__(self, qualname: str) -> None:
        self.qualname = qualname


class _Obj:
    def __init__(self, cls: str | None) -> None:
        self.cls = cls


_MARK = object()
_BUILTIN_NAMES = {"dict": "dict", "list": "list", "tuple": "tuple"}


def read_pickle(fh: IO[bytes] | _Bounded) -> tuple[str | None, bool]:
    """(class name of the top-level object or None, whether joblib wrote it).

    Opcodes are decoded by `pickletools.genops`, never executed. joblib writes numpy array
    bytes raw into the stream after each NumpyArrayWrapper, which genops cannot decode;
    by then the top-level object is already at the bottom of the stack, so that is the
    answer.
    """
    stack: list[Any] = []
    memo: dict[int, Any] = {}
    joblib_wrapped = False
    try:
        for op, arg, _ in pickletools.genops(fh):  # type: ignore[arg-type]  # duck-typed file
            if op.name == "STOP":
                return (_class_name(stack[-1]) if stack else None), joblib_wrapped
            _step(op, arg, stack, memo)
            if isinstance(stack[-1:] and stack[-1], _Global):
                joblib_wrapped |= stack[-1].qualname.startswith("joblib.")
    except Exception:  # noqa: BLE001 - raw joblib array bytes, truncated or hostile input
        return (_class_name(stack[0]) if stack else None), joblib_wrapped
    return None, joblib_wrapped


def _class_name(value: Any) -> str | None:
    if isinstance(value, _Obj) and value.cls:
        return value.cls.rsplit(".", 1)[-1]
    if isinstance(value, dict | list | tuple):
        return _BUILTIN_NAMES[type(value).__name__]
    return None


def _pop_mark(stack: list[Any]) -> list[Any]:
    for i in range(len(stack) - 1, -1, -1):
        if stack[i] is _MARK:
            items = stack[i + 1:]
            del stack[i:]
            return items
    raise ValueError("no mark")


def _callable_result(func: Any, args: Any) -> _Obj:
    name = func.qualname if isinstance(func, _Global) else None
    if name == "copyreg._reconstructor" and isinstance(args, tuple) and args:
        first = args[0]
        name = first.qualname if isinstance(first, _Global) else None
    return _Obj(name)


def _step(op: Any, arg: Any, stack: list[Any], memo: dict[int, Any]) -> None:
    name = op.name
    if name == "MARK":
        stack.append(_MARK)
    elif name == "GLOBAL":
        stack.append(_Global(str(arg).replace(" ", ".")))
    elif name == "STACK_GLOBAL":
        qual = stack.pop()
        module = stack.pop()
        stack.append(_Global(f"{module}.{qual}"))
    elif name in ("MEMOIZE",):
        memo[len(memo)] = stack[-1]
    elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
        memo[int(arg)] = stack[-1]
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        stack.append(memo.get(int(arg)))
    elif name == "REDUCE":
        args = stack.pop()
        stack.append(_callable_result(stack.pop(), args))
    elif name == "NEWOBJ":
        stack.pop()
        stack.append(_callable_result(stack.pop(), ()))
    elif name == "NEWOBJ_EX":
        stack.pop()
        stack.pop()
        stack.append(_callable_result(stack.pop(), ()))
    elif name == "INST":
        _pop_mark(stack)
        stack.append(_Obj(str(arg).replace(" ", ".")))
    elif name == "OBJ":
        items = _pop_mark(stack)
        stack.append(_callable_result(items[0] if items else None, ()))
    elif name in ("EMPTY_DICT", "DICT"):
        if name == "DICT":
            _pop_mark(stack)
        stack.append({})
    elif name in ("EMPTY_LIST", "LIST"):
        if name == "LIST":
            _pop_mark(stack)
        stack.append([])
    elif name in ("EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"):
        stack.append(_tuple(name, stack))
    elif isinstance(arg, str) and not op.stack_before:
        stack.append(arg)  # string constants feed STACK_GLOBAL
    else:
        _generic(op, stack)


def _tuple(name: str, stack: list[Any]) -> tuple[Any, ...]:
    if name == "TUPLE":
        return tuple(_pop_mark(stack))
    count = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}[name]
    items = stack[len(stack) - count:] if count else []
    del stack[len(stack) - count:]
    return tuple(items)


def _generic(op: Any, stack: list[Any]) -> None:
    """Any other opcode: pop what it consumes (to the mark if it uses one), keep the
    object it modifies in place (BUILD, SETITEMS, APPEND...), push placeholders."""
    before = op.stack_before
    if before and before[-1] is pickletools.stackslice:
        _pop_mark(stack)
        before = before[:-2]  # [..., target, markobject, stackslice]
    elif before:
        modified = before[0] if op.stack_after else None
        count = len(before)
        kept = stack[-count] if modified is not None and len(stack) >= count else None
        del stack[len(stack) - count:]
        if op.stack_after and kept is not None and op.name in _IN_PLACE:
            stack.append(kept)
            return
        stack.extend(None for _ in op.stack_after)
        return
    # mark-consuming ops that modify an object below the mark leave it in place
    if op.stack_after and op.name not in _IN_PLACE:
        del stack[len(stack) - len(before):]
        stack.extend(None for _ in op.stack_after)


_IN_PLACE = {"BUILD", "SETITEM", "SETITEMS", "APPEND", "APPENDS", "ADDITEMS"}
