"""Getting image bytes out of a request: multipart parts or a raw image body."""
from service.errors import ApiError

FIELD = "image"
RAW_TYPES = ("image/", "application/octet-stream")


def image_blobs(request, max_images):
    """The uploaded images' bytes, in the order sent.

    Accepts ``multipart/form-data`` with one or more files in the field
    ``image``, or a body whose Content-Type is ``image/*`` (or
    ``application/octet-stream``) holding one image.
    """
    mimetype = request.mimetype
    if mimetype == "multipart/form-data":
        blobs = [part.read() for part in request.files.getlist(FIELD)]
        if not blobs and FIELD in request.form:
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
