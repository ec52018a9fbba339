"""One exception tree for the whole service.

    QAError                      base; carries a user-facing ``detail``
    ├── BadInputError            400  malformed or invalid input (HTTP body, file, CLI argument)
    │   └── LoaderError          400  a file or record that cannot be ingested
    ├── UnauthorizedError        401  missing or wrong API key
    ├── NotFoundError            404  unknown document id
    ├── RequestTimeoutError      408  an upload's body did not arrive in time
    ├── PayloadTooLargeError     413  body, batch or field above a configured limit
    ├── UnsupportedMediaTypeError 415 a body that is not JSON (or NDJSON where accepted)
    ├── RateLimitedError         429  per-client rate limit reached
    ├── WriterBusyError          409  another process holds the index writer lock
    ├── NotReadyError            503  model or index still loading
    ├── OverloadedError          503  too many requests in flight and queued (load shedding)
    ├── ClientClosedError        499  the client left before its turn: the work is dropped
    ├── ModelUnavailableError    503  embedding model missing or cannot be loaded
    ├── IndexCorruptError        503  index directory damaged or built for another model
    ├── StoreUnavailableError    503  the PostgreSQL store cannot be reached (Retry-After)
    ├── StorageError             503  the disk failed a write (EIO); nothing half-written is served
    │   └── StorageFullError     507  no space left on the device (ENOSPC, quota)
    └── LLMError                 502  the configured LLM server failed

Every layer raises these; ``qa_service.api.problems`` maps them to RFC 9457 problem
responses in one place and the CLI prints ``detail`` and exits non-zero.
"""

from __future__ import annotations


class QAError(Exception):
    """Base of every error the service reports to a user."""

    status_code: int = 500
    title: str = "Internal error"
    slug: str = "internal"
    retry_after_s: int | None = None  # sent as Retry-After when set

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadInputError(QAError):
    status_code = 400
    title = "Bad request"
    slug = "bad-request"


class LoaderError(BadInputError):
    title = "Cannot ingest input"
    slug = "ingest-error"


class UnauthorizedError(QAError):
    status_code = 401
    title = "Unauthorized"
    slug = "unauthorized"


class NotFoundError(QAError):
    status_code = 404
    title = "Not found"
    slug = "not-found"


class RequestTimeoutError(QAError):
    status_code = 408
    title = "Request timeout"
    slug = "request-timeout"


class PayloadTooLargeError(QAError):
    status_code = 413
    title = "Payload too large"
    slug = "too-large"


class UnsupportedMediaTypeError(QAError):
    status_code = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"


class RateLimitedError(QAError):
    status_code = 429
    title = "Too many requests"
    slug = "rate-limited"

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class WriterBusyError(QAError):
    status_code = 409
    title = "Index is being written"
    slug = "writer-busy"
    retry_after_s = 5


class NotReadyError(QAError):
    status_code = 503
    title = "Service not ready"
    slug = "not-ready"

    def __init__(self, detail: str, retry_after_s: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class OverloadedError(QAError):
    status_code = 503
    title = "Service busy"
    slug = "overloaded"

    def __init__(self, detail: str, retry_after_s: int = 1) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class ClientClosedError(QAError):
    """Nobody reads this answer (nginx's 499): raised to drop work, and counted in metrics."""

    status_code = 499
    title = "Client closed request"
    slug = "client-closed"


class ModelUnavailableError(QAError):
    status_code = 503
    title = "Embedding model unavailable"
    slug = "model-unavailable"


class IndexCorruptError(QAError):
    status_code = 503
    title = "Index unusable"
    slug = "index-unusable"


class StoreUnavailableError(QAError):
    """The database behind QA_STORE_URL does not answer; it usually comes back, so retry."""

    status_code = 503
    title = "Store unavailable"
    slug = "store-unavailable"
    retry_after_s = 5


class StorageError(QAError):
    status_code = 503
    title = "Storage failed"
    slug = "storage-failed"


class StorageFullError(StorageError):
    status_code = 507
    title = "Insufficient storage"
    slug = "storage-full"


class LLMError(QAError):
    status_code = 502
    title = "LLM server failed"
    slug = "llm-error"
