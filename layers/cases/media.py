"""Case media (案件多媒体): photos, recordings and videos stored once, addressed by SHA-256.

Files live under ``root/ab/cd/<sha256>`` (``root`` defaults to ``var/media``); one
``city.media_blobs`` row per distinct content, however many cases use it. The type is read
from the bytes (magic numbers), never trusted from the client: a declared ``Content-Type``
must agree with what the bytes are. Size limits per kind: photos and audio 8 MiB, video
10 MiB (the API's global request-body limit is 10 MiB too, multipart overhead included, so
a video must stay a little below it).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import psycopg

from spatial.errors import FieldIssue, InvalidInput, PayloadTooLarge, UnprocessableInput
from spatial.settings import PROJECT_ROOT

MediaClass = Literal["image", "audio", "video"]
DEFAULT_ROOT: Final = PROJECT_ROOT / "var" / "media"
MIB: Final = 1024 * 1024
SIZE_LIMITS: Final[dict[MediaClass, int]] = {"image": 8 * MIB, "audio": 8 * MIB, "video": 10 * MIB}
PHOTO_KINDS: Final = frozenset(
    {"near", "far", "reference", "before", "after", "feedback", "supplement"}
)
MEDIA_KINDS: Final = (*sorted(PHOTO_KINDS), "audio", "video", "other")
MIME_CLASS: Final[dict[str, MediaClass]] = {
    "image/jpeg": "image",
    "image/png": "image",
    "image/webp": "image",
    "image/heic": "image",
    "image/heif": "image",
    "video/mp4": "video",
    "video/quicktime": "video",
    "video/3gpp": "video",
    "audio/amr": "audio",
    "audio/amr-wb": "audio",
    "audio/mpeg": "audio",
    "audio/mp4": "audio",
    "audio/aac": "audio",
    "audio/wav": "audio",
    "audio/3gpp": "audio",
}
# Declared names that mean the same as a detected type.
_ALIASES: Final = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "audio/mp3": "audio/mpeg",
    "audio/x-wav": "audio/wav",
    "audio/wave": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-m4a": "audio/mp4",
    "audio/m4a": "audio/mp4",
    "audio/x-aac": "audio/aac",
    "audio/amr-nb": "audio/amr",
    "image/heic-sequence": "image/heic",
    "image/heif-sequence": "image/heif",
}
# A container the bytes cannot tell apart: the declared type of the same family is kept
# (an ``.m4a`` voice note is an MP4 file; a 3GP recording may hold only audio).
_FAMILIES: Final = (
    frozenset({"video/mp4", "audio/mp4", "audio/aac"}),
    frozenset({"video/3gpp", "audio/3gpp"}),
    frozenset({"image/heic", "image/heif"}),
)
_UNDECLARED: Final = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_HEIC_BRANDS: Final = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"})
_HEIF_BRANDS: Final = frozenset({b"mif1", b"msf1", b"avif"})
_QT_BRANDS: Final = frozenset({b"qt  "})
_M4A_BRANDS: Final = frozenset({b"M4A ", b"M4B ", b"M4P "})


class UnsupportedMediaType(InvalidInput):
    """The bytes are of no accepted media type (415)."""

    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type (不支持的文件类型)"


def _ftyp(data: bytes) -> str | None:
    """The MIME type of an ISO base-media file (MP4, MOV, 3GP, M4A, HEIC) from its brand."""
    if len(data) < 12 or data[4:8] != b"ftyp":
        return None
    brand = data[8:12]
    if brand in _HEIC_BRANDS:
        return "image/heic"
    if brand in _HEIF_BRANDS:
        return "image/heif"
    if brand in _QT_BRANDS:
        return "video/quicktime"
    if brand.startswith(b"3g"):
        return "video/3gpp"
    if brand in _M4A_BRANDS:
        return "audio/mp4"
    return "video/mp4"


def _mpeg_audio(data: bytes) -> str | None:
    """MP3 (ID3 tag or MPEG frame sync) or AAC in ADTS frames."""
    if data.startswith(b"ID3"):
        return "audio/mpeg"
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        return "audio/aac" if data[1] & 0x06 == 0 else "audio/mpeg"
    return None


def detect_mime(data: bytes) -> str | None:
    """The media type the bytes are, by magic number; None when unknown."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data.startswith(b"#!AMR-WB\n"):
        return "audio/amr-wb"
    if data.startswith(b"#!AMR\n"):
        return "audio/amr"
    return _ftyp(data) or _mpeg_audio(data)


def _declared(content_type: str | None) -> str:
    base = (content_type or "").split(";")[0].strip().lower()
    return _ALIASES.get(base, base)


def resolve_mime(data: bytes, content_type: str | None, field: str = "file") -> str:
    """The stored type: detected from the bytes, which the declared type must agree with."""
    detected = detect_mime(data)
    if detected is None:
        accepted = ", ".join(sorted(MIME_CLASS))
        raise UnsupportedMediaType(
            "The file is of no accepted media type.",
            [FieldIssue(field, f"unrecognised content; accepted: {accepted}")],
        )
    declared = _declared(content_type)
    if declared in _UNDECLARED or declared == detected:
        return detected
    if any(declared in f and detected in f for f in _FAMILIES):
        return declared
    raise UnprocessableInput(
        f"The declared type {declared} does not match the content ({detected}).",
        [FieldIssue(field, f"declared {declared}, but the bytes are {detected}")],
    )


def media_class(mime: str) -> MediaClass:
    """image, audio or video."""
    return MIME_CLASS[mime]


def check_size(size: int, mime: str, field: str = "file") -> None:
    """413 when the file exceeds its kind's limit."""
    cls = media_class(mime)
    limit = SIZE_LIMITS[cls]
    if size > limit:
        raise PayloadTooLarge(
            f"A {cls} file may have at most {limit // MIB} MiB; this one has {size} bytes.",
            [FieldIssue(field, f"{size} bytes > {limit} bytes ({cls})")],
        )
    if size == 0:
        raise InvalidInput("The file is empty.", [FieldIssue(field, "no bytes")])


def kind_accepts(kind: str, mime: str) -> bool:
    """Whether a case-media kind (近景, 录音, 视频…) may hold a file of ``mime``."""
    cls = media_class(mime) if mime in MIME_CLASS else None
    if kind in PHOTO_KINDS:
        return cls == "image"
    if kind == "audio":
        return cls == "audio" or mime in ("video/3gpp", "video/mp4")
    if kind == "video":
        return cls == "video"
    return cls is not None


@dataclass(frozen=True)
class StoredMedia:
    """What was stored: content address, type and size; ``created`` for the first copy."""

    sha256: str
    mime: str
    size: int
    created: bool


class MediaStore:
    """A directory of immutable files named by their SHA-256 (``root/ab/cd/<sha256>``)."""

    def __init__(self, root: Path | str = DEFAULT_ROOT) -> None:
        """Use ``root`` (created on first write)."""
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        """Where the file with this digest lives."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise InvalidInput("Not a SHA-256 digest.", [FieldIssue("sha256", "64 hex digits")])
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def write(self, data: bytes) -> str:
        """Store ``data`` (atomically; a second copy of the same bytes is a no-op)."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists() and target.stat().st_size == len(data):
            return digest
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def open(self, sha256: str) -> bytes:
        """The bytes of a stored file (``FileNotFoundError`` when missing)."""
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        """True when the file is on disk."""
        return self.path(sha256).exists()


def media_store_of(state: Any) -> MediaStore:
    """The app's store: ``app.state.media_store``, else ``settings.media_dir``, else var/media."""
    store = getattr(state, "media_store", None)
    if store is None:
        settings = getattr(state, "settings", None)
        store = MediaStore(getattr(settings, "media_dir", None) or DEFAULT_ROOT)
        state.media_store = store
    return store


async def store_media(
    conn: psycopg.AsyncConnection,
    media: MediaStore,
    data: bytes,
    mime: str | None,
    *,
    field: str = "file",
) -> StoredMedia:
    """Check type and size, write the file, record the blob row (once per content)."""
    resolved = resolve_mime(data, mime, field)
    check_size(len(data), resolved, field)
    digest = media.write(data)
    cur = await conn.execute(
        "INSERT INTO city.media_blobs (sha256, mime, size_bytes) VALUES (%s, %s, %s)"
        " ON CONFLICT (sha256) DO NOTHING RETURNING sha256",
        (digest, resolved, len(data)),
    )
    created = await cur.fetchone() is not None
    if not created:
        row = await (
            await conn.execute("SELECT mime FROM city.media_blobs WHERE sha256 = %s", (digest,))
        ).fetchone()
        resolved = row[0] if row else resolved
    return StoredMedia(digest, resolved, len(data), created)


async def store(
    conn: psycopg.AsyncConnection,
    media: MediaStore,
    data: bytes,
    mime: str | None,
    *,
    field: str = "file",
) -> str:
    """:func:`store_media`, returning only the SHA-256 (the shared interface)."""
    return (await store_media(conn, media, data, mime, field=field)).sha256


async def blob(conn: psycopg.AsyncConnection, sha256: str) -> tuple[str, int] | None:
    """``(mime, size)`` of a stored blob, or None."""
    cur = await conn.execute(
        "SELECT mime, size_bytes FROM city.media_blobs WHERE sha256 = %s", (sha256,)
    )
    row = await cur.fetchone()
    return (row[0], int(row[1])) if row else None
