"""Retrieval: dense search over the live FAISS generation, filters, and ranking policy."""

from qa_service.retrieval.retriever import Retriever

__all__ = ["Retriever"]
