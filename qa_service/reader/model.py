"""The span reader as a PyTorch module: the default model's BertModel with a start/end head.

PyTorch is needed only to train and to export; answering runs the OpenVINO conversion.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel

# Input positions a span may not use get this logit (not -inf: softmax of a row stays finite).
MASKED_LOGIT = -1e4


class SpanReader(nn.Module):
    """Start and end logits per token; position 0 is the no-answer slot."""

    def __init__(self, bert: BertModel) -> None:
        super().__init__()
        self.bert = bert
        self.qa_outputs = nn.Linear(bert.config.hidden_size, 2)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, allowed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        logits = self.qa_outputs(hidden).float()
        logits = logits.masked_fill(allowed.unsqueeze(-1) == 0, MASKED_LOGIT)
        return logits[..., 0], logits[..., 1]


def from_encoder(model_dir: Path, layers: int) -> SpanReader:
    """A reader whose body starts as the lowest ``layers`` layers of the encoder in ``model_dir``."""
    bert = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False, attn_implementation="sdpa")
    bert.encoder.layer = bert.encoder.layer[:layers]
    bert.config.num_hidden_layers = layers
    return SpanReader(bert)


def freeze_lower(reader: SpanReader, layers: int) -> None:
    """Freeze the embeddings and the lowest ``layers`` layers: no gradient, no backward through them."""
    for p in reader.bert.embeddings.parameters():
        p.requires_grad_(False)
    for layer in reader.bert.encoder.layer[:layers]:
        for p in layer.parameters():
            p.requires_grad_(False)


def body_state(reader: SpanReader) -> dict[str, torch.Tensor]:
    """Every weight the reader ships: all but the word embeddings (taken from the encoder)."""
    return {k: v for k, v in reader.state_dict().items() if k != "bert.embeddings.word_embeddings.weight"}


def assemble(model_dir: Path, body: dict[str, Any], layers: int) -> SpanReader:
    """A reader from the encoder's word embeddings plus a shipped body."""
    config = BertConfig.from_pretrained(str(model_dir), num_hidden_layers=layers)
    reader = SpanReader(BertModel(config, add_pooling_layer=False))
    encoder = BertModel.from_pretrained(str(model_dir), add_pooling_layer=False)
    state = {k: v.float() for k, v in body.items()}
    state["bert.embeddings.word_embeddings.weight"] = encoder.embeddings.word_embeddings.weight.data
    reader.load_state_dict(state, strict=True)
    return reader.eval()
