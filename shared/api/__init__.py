"""The HTTP edge: decoding, validation, the OpenAPI document and the async/auto modes."""
