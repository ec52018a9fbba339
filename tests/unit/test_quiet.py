"""The set-up silences library warnings meant for library authors, and only those, only inside."""

from __future__ import annotations

import logging
import warnings

from qa_service.quiet import library_noise_silenced


def _warn(category: type[Warning], module: str) -> None:
    warnings.warn_explicit("noise", category, filename=f"{module}.py", lineno=1, module=module)


def test_library_deprecations_are_silenced_inside_only() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with library_noise_silenced():
            _warn(FutureWarning, "transformers.modeling_utils")
            _warn(DeprecationWarning, "sentence_transformers.base.model")
            _warn(FutureWarning, "qa_service.embedding.openvino")  # ours: still shown
            _warn(UserWarning, "transformers.modeling_utils")  # not a deprecation: still shown
        _warn(FutureWarning, "transformers.modeling_utils")  # outside the block: shown
    assert [(w.category, w.filename) for w in caught] == [
        (FutureWarning, "qa_service.embedding.openvino.py"),
        (UserWarning, "transformers.modeling_utils.py"),
        (FutureWarning, "transformers.modeling_utils.py"),
    ]


def test_library_loggers_are_quiet_below_error_inside_and_restored() -> None:
    logger = logging.getLogger("sentence_transformers")
    before = logger.level
    with library_noise_silenced():
        assert not logging.getLogger("sentence_transformers.base.model").isEnabledFor(logging.WARNING)
        assert logging.getLogger("sentence_transformers.base.model").isEnabledFor(logging.ERROR)
        assert logging.getLogger("qa_service").isEnabledFor(logging.WARNING)
    assert logger.level == before
