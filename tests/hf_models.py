"""Models as people bring them: Hugging Face transformers and plain ``nn.Module`` code.

Each builder seeds the global RNG first and builds from a tiny config with random weights
(nothing is downloaded), so two calls give the same values and a forward + backward pass
takes a few milliseconds on a CPU. Each has a function giving example inputs, and a
zero-argument ``make_*`` factory usable as a source: ``tests/hf_models.py:make_gpt2``.

The Hugging Face models need ``transformers`` (imported inside the builders, so this file
loads without it; ``HAS_TRANSFORMERS`` says whether it is there). Their inputs are a dict of
keyword tensors: ``model(**gpt2_inputs())``. The plain models take positional tensors:
``model(*transformer_inputs())``.

``CASES`` maps each name to ``(make, inputs)``: ``make()`` gives the model, ``inputs()`` its
example inputs (a dict for the Hugging Face models, a tuple for the others).
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

__all__ = [
    "HAS_TRANSFORMERS",
    "VOCAB",
    "CASES",
    "HF_CASES",
    "gpt2",
    "gpt2_inputs",
    "make_gpt2",
    "bert_mlm",
    "bert_inputs",
    "make_bert_mlm",
    "t5",
    "t5_inputs",
    "make_t5",
    "llama",
    "llama_inputs",
    "make_llama",
    "make_llama_tied",
    "transformer",
    "transformer_inputs",
    "make_transformer",
    "transformer_encoder",
    "transformer_encoder_inputs",
    "make_transformer_encoder",
    "TwiceLSTM",
    "twice_lstm",
    "twice_lstm_inputs",
    "make_twice_lstm",
    "SmallResNet",
    "small_resnet",
    "small_resnet_inputs",
    "make_small_resnet",
]

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None

VOCAB = 64  # every Hugging Face model here: token ids in [0, 64)
_WIDTH = 32
_POSITIONS = 32


def _tokens(batch: int, seq: int, seed: int, high: int = VOCAB) -> torch.Tensor:
    """int64 token ids in ``[0, high)`` from a generator of its own (the global RNG untouched)."""
    return torch.randint(0, high, (batch, seq), generator=torch.Generator().manual_seed(seed))


def _causal_inputs(batch: int, seq: int, seed: int, labels: bool) -> dict[str, torch.Tensor]:
    ids = _tokens(batch, seq, seed)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    if labels:
        inputs["labels"] = ids.clone()  # the model shifts them itself
    return inputs


# --- Hugging Face transformers -----------------------------------------------------------


def gpt2(seed: int = 0, **config):
    """``GPT2LMHeadModel``, 2 layers of width 32: ``lm_head.weight`` is
    ``transformer.wte.weight``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    settings = dict(
        vocab_size=VOCAB,
        n_positions=_POSITIONS,
        n_embd=_WIDTH,
        n_layer=2,
        n_head=4,
        bos_token_id=VOCAB - 1,  # GPT-2's 50256 is outside a 64-token vocabulary
        eos_token_id=VOCAB - 1,
    )
    return GPT2LMHeadModel(GPT2Config(**{**settings, **config}))


def gpt2_inputs(
    batch: int = 2, seq: int = 8, seed: int = 0, labels: bool = True
) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` of ones and ``labels = input_ids`` (causal LM)."""
    return _causal_inputs(batch, seq, seed, labels)


def make_gpt2():
    return gpt2()


def bert_mlm(seed: int = 0, **config):
    """``BertForMaskedLM``, 2 layers of width 32: ``cls.predictions.decoder.weight`` is
    ``bert.embeddings.word_embeddings.weight``."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    settings = dict(
        vocab_size=VOCAB,
        hidden_size=_WIDTH,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=_POSITIONS,
        type_vocab_size=2,
    )
    return BertForMaskedLM(BertConfig(**{**settings, **config}))


def bert_inputs(
    batch: int = 2, seq: int = 8, seed: int = 0, labels: bool = True
) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` of ones and ``labels = input_ids`` (every position)."""
    return _causal_inputs(batch, seq, seed, labels)


def make_bert_mlm():
    return bert_mlm()


def t5(seed: int = 0, **config):
    """``T5ForConditionalGeneration``, 2 + 2 layers of width 32: ``lm_head.weight``,
    ``encoder.embed_tokens.weight`` and ``decoder.embed_tokens.weight`` are ``shared.weight``."""
    from transformers import T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    settings = dict(
        vocab_size=VOCAB,
        d_model=_WIDTH,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    )
    return T5ForConditionalGeneration(T5Config(**{**settings, **config}))


def t5_inputs(
    batch: int = 2, seq: int = 8, seed: int = 0, labels: bool = True
) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` of ones, ``decoder_input_ids`` (start token 0, then
    ``labels`` shifted right) and ``labels`` (ids in [2, 64): no pad, no end token)."""
    ids = _tokens(batch, seq, seed)
    target = 2 + _tokens(batch, seq, seed + 1, VOCAB - 2)
    start = torch.zeros(batch, 1, dtype=target.dtype)
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "decoder_input_ids": torch.cat([start, target[:, :-1]], dim=1),
    }
    if labels:
        inputs["labels"] = target
    return inputs


def make_t5():
    return t5()


def llama(seed: int = 0, tied: bool = False, **config):
    """``LlamaForCausalLM``, 2 layers of width 32, grouped-query attention (4 heads, 2 kv);
    with ``tied`` its ``lm_head.weight`` is ``model.embed_tokens.weight``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    settings = dict(
        vocab_size=VOCAB,
        hidden_size=_WIDTH,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=_POSITIONS,
        tie_word_embeddings=tied,
    )
    return LlamaForCausalLM(LlamaConfig(**{**settings, **config}))


def llama_inputs(
    batch: int = 2, seq: int = 8, seed: int = 0, labels: bool = True
) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` of ones and ``labels = input_ids`` (causal LM)."""
    return _causal_inputs(batch, seq, seed, labels)


def make_llama():
    return llama()


def make_llama_tied():
    return llama(tied=True)


# --- plain torch.nn ----------------------------------------------------------------------


def transformer(seed: int = 0) -> nn.Transformer:
    """``nn.Transformer`` of width 16: 2 encoder and 2 decoder layers, 4 heads, batch first."""
    torch.manual_seed(seed)
    return nn.Transformer(
        d_model=16,
        nhead=4,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dim_feedforward=32,
        batch_first=True,
    )


def transformer_inputs(
    batch: int = 2, src: int = 6, tgt: int = 5, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(src, tgt)``: ``(batch, src, 16)`` and ``(batch, tgt, 16)`` floats."""
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(batch, src, 16, generator=generator),
        torch.randn(batch, tgt, 16, generator=generator),
    )


def make_transformer():
    return transformer()


def transformer_encoder(seed: int = 0) -> nn.TransformerEncoder:
    """``nn.TransformerEncoder``: 2 copies of one layer of width 16 (4 heads), batch first."""
    torch.manual_seed(seed)
    layer = nn.TransformerEncoderLayer(16, 4, dim_feedforward=32, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)


def transformer_encoder_inputs(batch: int = 2, seq: int = 6, seed: int = 0) -> tuple[torch.Tensor]:
    """``(src,)``: a ``(batch, seq, 16)`` float tensor."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, seq, 16, generator=generator),)


def make_transformer_encoder():
    return transformer_encoder()


class TwiceLSTM(nn.Module):
    """One ``nn.LSTM`` called twice in ``forward`` (its weights used by two calls), then a
    linear head on the last step: ``(batch, seq, 4) -> (batch, 2)``."""

    def __init__(self, width: int = 4, hidden: int = 8):
        super().__init__()
        self.lstm = nn.LSTM(width, hidden, batch_first=True)
        self.bridge = nn.Linear(hidden, width)
        self.head = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, _ = self.lstm(x)
        second, _ = self.lstm(torch.tanh(self.bridge(first)))
        return self.head(second[:, -1])


def twice_lstm(seed: int = 0) -> TwiceLSTM:
    torch.manual_seed(seed)
    return TwiceLSTM()


def twice_lstm_inputs(batch: int = 2, seq: int = 5, seed: int = 0) -> tuple[torch.Tensor]:
    """``(x,)``: a ``(batch, seq, 4)`` float tensor."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, seq, 4, generator=generator),)


def make_twice_lstm():
    return twice_lstm()


class _Basic(nn.Module):
    """ResNet's basic block: two 3x3 convolutions with BatchNorm, and a shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(out + skip)


class SmallResNet(nn.Module):
    """A ResNet in torchvision's naming (``conv1``, ``bn1``, ``layer1``…, ``fc``), 8 and 16
    channels: ``(batch, 3, 16, 16) -> (batch, classes)``. Every BatchNorm2d has buffers."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(_Basic(8, 8), _Basic(8, 8))
        self.layer2 = nn.Sequential(_Basic(8, 16, stride=2), _Basic(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def small_resnet(seed: int = 0) -> SmallResNet:
    torch.manual_seed(seed)
    return SmallResNet()


def small_resnet_inputs(batch: int = 2, size: int = 16, seed: int = 0) -> tuple[torch.Tensor]:
    """``(x,)``: a ``(batch, 3, size, size)`` float tensor."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 3, size, size, generator=generator),)


def make_small_resnet():
    return small_resnet()


HF_CASES = {
    "gpt2": (make_gpt2, gpt2_inputs),
    "bert_mlm": (make_bert_mlm, bert_inputs),
    "t5": (make_t5, t5_inputs),
    "llama": (make_llama, llama_inputs),
    "llama_tied": (make_llama_tied, llama_inputs),
}

CASES = {
    **HF_CASES,
    "transformer": (make_transformer, transformer_inputs),
    "transformer_encoder": (make_transformer_encoder, transformer_encoder_inputs),
    "twice_lstm": (make_twice_lstm, twice_lstm_inputs),
    "small_resnet": (make_small_resnet, small_resnet_inputs),
}
