"""Silence, for one block, the warnings libraries address to their own authors or integrators.

Converting a model (tracing it with PyTorch, loading it with transformers, quantising it with
NNCF) prints warnings that say nothing a user of this service can act on: PyTorch's
``TracerWarning`` about Python values frozen into the trace (the traced graph is checked
against the PyTorch model by the tests), transformers' deprecation notices and load reports
(the reader leaves the checkpoint's pooler out on purpose), sentence-transformers' deprecation
notices. Only those categories and loggers are quieted, only inside the block, and errors still
show; nothing is changed for the rest of the process.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

# Library loggers whose warnings, during a conversion, are addressed to library authors.
_LOGGERS = ("transformers", "sentence_transformers", "torch.jit", "nncf")
# Modules whose deprecation warnings (FutureWarning, DeprecationWarning) are not ours to act on.
_LIBRARIES = r"(transformers|sentence_transformers|torch|openvino|nncf)(\.|$)"


@contextmanager
def library_noise_silenced() -> Iterator[None]:
    """Inside the block: no tracer or deprecation warnings, no library progress bars or load
    reports below ERROR. Not thread-safe (``warnings.catch_warnings``): for one-off set-up steps."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [logger.level for logger in loggers]
    restore_bar = _transformers_progress_bar(enabled=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=_LIBRARIES)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=_LIBRARIES)
        tracer_warning = _tracer_warning()
        if tracer_warning is not None:
            warnings.filterwarnings("ignore", category=tracer_warning)
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
            if restore_bar:
                _transformers_progress_bar(enabled=True)


def _tracer_warning() -> type[Warning] | None:
    try:
        from torch.jit._trace import TracerWarning  # torch.jit re-exports it without __all__
    except ImportError:  # the OpenVINO-only runtime never imports PyTorch
        return None
    return TracerWarning


def _transformers_progress_bar(*, enabled: bool) -> bool:
    """Turn transformers' progress bars on or off; True when this call changed them."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return False
    if transformers_logging.is_progress_bar_enabled() == enabled:
        return False
    if enabled:
        transformers_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
    else:
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return True
