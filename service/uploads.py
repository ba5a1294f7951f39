"""Getting image bytes out of a request: multipart parts or a raw image body."""
from flask import current_app
from werkzeug.http import parse_options_header

from service.errors import ApiError

FIELD = "image"
RAW_TYPES = ("image/", "application/octet-stream")
CRLF = b"\r\n"


def image_blobs(request, max_images):
    """The uploaded images' bytes, in the order sent.

    Accepts ``multipart/form-data`` with one or more files in the field
    ``image``, or a body whose Content-Type is ``image/*`` (or
    ``application/octet-stream``) holding one image.
    """
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        blobs, as_text = _form_images(request)
        if not blobs and as_text:
            # a part without a filename arrives as text, already decoded: its bytes are lost
            raise ApiError(400, "missing_image", f"the field '{FIELD}' was sent as text; send it as a file "
                                                 f"part with a filename (curl -F {FIELD}=@digit.png)")
        if not blobs:
            raise ApiError(400, "missing_image", f"no file in the multipart field '{FIELD}'")
    elif mimetype.startswith(RAW_TYPES):
        blobs = [request.get_data(cache=False)]
    elif not mimetype and not request.content_length:
        raise ApiError(400, "missing_image",
                       f"send the image as multipart/form-data field '{FIELD}' or as an image/* body")
    else:
        raise ApiError(415, "unsupported_media_type",
                       "Content-Type must be multipart/form-data or image/*")
    if len(blobs) > max_images:
        raise ApiError(413, "too_many_images", f"at most {max_images} images per request, got {len(blobs)}")
    for i, blob in enumerate(blobs):
        if not blob:
            raise ApiError(400, "empty_image", f"image {i} is empty (0 bytes)")
    return blobs


def _form_images(request):
    """(file parts' bytes in the field ``image``, whether the field came as text instead).

    A plainly well-formed body is split here with ``bytes.split``, in C:
    Werkzeug's streaming parser runs Python for every part, which for a batch
    of small PNGs costs more than decoding them (docs/benchmarks.md has the
    figures this fast path must keep earning). Anything else
    (no final boundary, bare CR or LF where CRLF belongs, folded, repeated or
    non-UTF-8 headers, a non-ASCII boundary, more parts than Flask's
    MAX_FORM_PARTS) goes to Werkzeug's parser, which re-reads the cached body
    and decides, so that the two never read one body two ways.
    """
    boundary = request.mimetype_params.get("boundary", "")
    parts = None
    if boundary.isascii() and boundary:
        parts = split_multipart(request.get_data(cache=True), boundary.encode())
    if parts is None or len(parts) > current_app.config["MAX_FORM_PARTS"]:
        return [part.read() for part in request.files.getlist(FIELD)], FIELD in request.form
    blobs, as_text = [], False
    for headers, content in parts:
        params = parse_options_header(headers.get("content-disposition"))[1]  # any type, as Werkzeug
        if params.get("name") != FIELD:
            continue
        if "filename" in params:
            blobs.append(content)
        else:
            as_text = True
    return blobs, as_text


def split_multipart(body, boundary):
    """``[(headers: dict of lower-case name -> str, content: bytes), ...]`` for a
    multipart ``body`` (RFC 2046) with ``boundary``, or None unless it is plainly well formed.
    """
    chunks = (CRLF + body).split(CRLF + b"--" + boundary)
    parts = []
    for i, chunk in enumerate(chunks):
        if i and chunk.startswith(b"--"):  # the final boundary: what follows is the epilogue
            return parts
        if b"\n--" + boundary in chunk:
            return None  # a delimiter after a bare LF, which Werkzeug would take too
        if i == 0:  # the preamble
            continue
        head, blank, content = chunk.partition(CRLF + CRLF)
        lines = head.split(CRLF)
        if not blank or lines[0].strip(b" \t"):  # the boundary line must end with (optional padding and) CRLF
            return None
        headers = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not name or name != name.strip() or b"\r" in line or b"\n" in line:
                return None  # folded, malformed, or split by a bare CR or LF
            try:
                name, value = name.decode("ascii").lower(), value.strip().decode("utf-8")
            except UnicodeDecodeError:
                return None
            if name in headers:
                return None
            headers[name] = value
        parts.append((headers, content))
    return None  # no final boundary: truncated
