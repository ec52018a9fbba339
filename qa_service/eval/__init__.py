"""Batch evaluation (``qa-service eval``): dataset adapters, metrics, runner, report.

``datasets`` reads SQuAD-style JSON, cross-lingual question pairs and hand-written JSONL;
``metrics`` grades one answer and summarises many; ``runner`` asks the questions in-process
or over HTTP; ``report`` writes JSON, Markdown and PNG plots. Nothing is imported here, so
the CLI can register the ``eval`` options without loading the rest.
"""
