"""The bundled demo collection: the seed Arabic news article and the XQuAD Arabic paragraphs.

A pure data module: it imports only the loaders and the document model, so any layer (the
OpenVINO converter's int8 calibration among them) may read it without reaching up to the
service. Ingesting it into a service is ``qa_service.service.ingest_sample``.
See ATTRIBUTION.md in this folder for sources and licences.
"""

from __future__ import annotations

from pathlib import Path

from qa_service.ingest.loaders import load_paths
from qa_service.models import Document

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

