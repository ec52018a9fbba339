"""The bundled demo collection: the seed Arabic news article and the XQuAD Arabic paragraphs.

See ATTRIBUTION.md in this folder for sources and licences.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from qa_service.ingest.loaders import load_paths
from qa_service.models import Document

if TYPE_CHECKING:
    from qa_service.service import IngestReport, QAService

log = logging.getLogger(__name__)

SAMPLE_DIR = Path(__file__).parent
SAMPLE_FILES = (SAMPLE_DIR / "seed.jsonl", SAMPLE_DIR / "xquad-ar-paragraphs.jsonl")


def sample_documents() -> list[Document]:
    """The bundled documents, in file order."""
    docs = []
    for item in load_paths(SAMPLE_FILES):
        if item.document is None:  # the bundled files are valid; a failure here is a packaging bug
            raise RuntimeError(f"bundled sample is damaged: {item.where}: {item.error}")
        docs.append(item.document)
    return docs


def ingest_sample(service: QAService) -> IngestReport:
    """Ingest the bundled sample (unchanged documents are skipped, so this is cheap to repeat)."""
    return service.ingest(sample_documents())


def ingest_sample_if_empty(service: QAService) -> None:
    documents, _ = service.store.counts()
    if documents == 0:
        report = ingest_sample(service)
        log.warning("ingested the bundled sample: %d documents, %d chunks in %.1fs",
                    report.added, report.chunks, report.seconds)
