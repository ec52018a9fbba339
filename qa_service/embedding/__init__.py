"""Embedding backends: the Encoder protocol, sentence-transformers, and the offline default model."""

from qa_service.embedding.base import Encoder, Vectors
from qa_service.embedding.provision import load_encoder, resolve_model_path

__all__ = ["Encoder", "Vectors", "load_encoder", "resolve_model_path"]
