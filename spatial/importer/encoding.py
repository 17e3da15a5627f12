"""Text encodings: ``.cpg`` files, codec names, decoding shapefile and CSV text."""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path
from typing import Final

from spatial.errors import FieldIssue, InvalidInput
from spatial.importer.records import Source

# Code pages as written in .cpg files; the GBK family is decoded with its superset GB18030.
CODEPAGES: Final[dict[str, str]] = {
    "936": "gb18030",
    "cp936": "gb18030",
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "gb18030": "gb18030",
    "54936": "gb18030",
    "65001": "utf-8",
    "utf8": "utf-8",
    "utf-8": "utf-8",
    "950": "big5",
    "88591": "latin-1",
    "8859_1": "latin-1",
    "1252": "cp1252",
}


def read_cpg(path: Path, layer: str) -> str | None:
    """Content of the shapefile's ``.cpg`` (next to it, in its directory or in its zip)."""
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                if Path(member).name.lower() == f"{layer}.cpg".lower():
                    return zf.read(member).decode("ascii", "replace").strip()
        return None
    folder = path if path.is_dir() else path.parent
    stem = layer if path.is_dir() else path.stem
    for candidate in folder.iterdir():
        if candidate.stem == stem and candidate.suffix.lower() == ".cpg":
            return candidate.read_text("ascii", "replace").strip()
    return None


def codec_name(label: str) -> str | None:
    """Python codec for an encoding label (.cpg value, code page, name) or None."""
    key = label.strip().lower().removeprefix("ansi").strip()
    if not key:
        return None
    key = CODEPAGES.get(key, f"cp{key}" if key.isdigit() else key)
    try:
        name = codecs.lookup(key).name
    except LookupError:
        return None
    return "gb18030" if name in {"gbk", "gb2312"} else name


def _encoding_candidates(cpg: str | None, override: str | None) -> list[tuple[str, str]]:
    """Encodings to try, in order, each with where it came from."""
    if override:
        codec = codec_name(override)
        if codec is None:
            raise InvalidInput(
                f"unknown encoding {override!r}",
                errors=[FieldIssue(field="encoding", message="unknown encoding")],
            )
        return [(codec, "--encoding")]
    out: list[tuple[str, str]] = []
    declared = codec_name(cpg) if cpg else None
    if declared:
        out.append((declared, f".cpg {cpg!r}"))
    return out + [(c, "fallback") for c in ("utf-8", "gb18030") if c != declared]


def _raw(text: str) -> bytes:
    """Original bytes of a string GDAL decoded as Latin-1."""
    return text.encode("latin-1", "replace")


def _pick_encoding(blobs: list[bytes], candidates: list[tuple[str, str]]) -> tuple[str, str]:
    """First candidate that decodes every byte string, else the last one (lossy)."""
    for codec, origin in candidates:
        try:
            for blob in blobs:
                blob.decode(codec)
        except UnicodeDecodeError:
            continue
        return codec, origin
    return candidates[-1][0], "lossy"


def decode_shapefile(source: Source, cpg: str | None, override: str | None) -> None:
    """Re-decode Latin-1 field names and values with the shapefile's real encoding."""
    strings = [*source.fields]
    strings += [v for r in source.records for v in r.props.values() if isinstance(v, str)]
    blobs = [_raw(s) for s in strings if not s.isascii()]
    candidates = _encoding_candidates(cpg, override)
    codec, origin = _pick_encoding(blobs, candidates)
    if origin == "lossy":
        source.warnings.append(f"text is not valid {codec}; undecodable bytes were replaced")
    elif origin == "fallback" and cpg and blobs:
        source.warnings.append(f".cpg says {cpg!r} but the text is not; decoded as {codec}")
    elif origin == "fallback" and blobs:
        source.warnings.append(f"no .cpg file; text detected as {codec}")
    source.encoding = codec

    def decode(text: str) -> str:
        return text if text.isascii() else _raw(text).decode(codec, "replace")

    source.fields = [decode(f) for f in source.fields]
    for rec in source.records:
        rec.props = {
            decode(k): decode(v) if isinstance(v, str) else v for k, v in rec.props.items()
        }


def decode_text(data: bytes, override: str | None) -> tuple[str, str]:
    """Decode CSV bytes: the override, else UTF-8 (with BOM) then GB18030."""
    candidates = (
        [c for c, _ in _encoding_candidates(None, override)]
        if override
        else ["utf-8-sig", "gb18030"]
    )
    for codec in candidates:
        try:
            return data.decode(codec), "utf-8" if codec == "utf-8-sig" else codec
        except UnicodeDecodeError:
            continue
    codec = candidates[-1]
    raise InvalidInput(
        f"text is not valid {codec}; pass the file's encoding with --encoding",
        errors=[FieldIssue(field="encoding", message=f"cannot decode as {codec}")],
    )
