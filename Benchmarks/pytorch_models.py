"""The DigitsCNN and TinyGPT examples' models in PyTorch, for phalanx-bench's paired comparison
(`phalanx-bench models`): the same layers, sizes, optimizer (AdamW), batch and data as the
Swift examples, one thread. Prints one JSON line: the steady-state time per training step.

    python3 Benchmarks/pytorch_models.py --model DigitsCNN --steps 200 --batch-size 64
    python3 Benchmarks/pytorch_models.py --model TinyGPT --steps 40 --batch-size 64
"""
import argparse
import json
import os
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESOURCES = os.path.join(ROOT, "Sources", "PhalanxData", "Resources")


def digits_cnn(channels=16, hidden=64):
    return torch.nn.Sequential(
        torch.nn.Unflatten(1, (1, 8, 8)),
        torch.nn.Conv2d(1, channels, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(channels, 2 * channels, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(2 * channels * 4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))


class Block(torch.nn.Module):
    """TinyGPT's pre-LayerNorm block: x + drop(attn(ln(x))), then x + drop(mlp(ln(x)))."""

    def __init__(self, embed, heads, dropout):
        super().__init__()
        self.ln1, self.ln2 = torch.nn.LayerNorm(embed), torch.nn.LayerNorm(embed)
        self.attention = torch.nn.MultiheadAttention(embed, heads, batch_first=True)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(embed, 4 * embed), torch.nn.GELU(), torch.nn.Linear(4 * embed, embed))
        self.drop1, self.drop2 = torch.nn.Dropout(dropout), torch.nn.Dropout(dropout)

    def forward(self, x, mask):
        a = self.ln1(x)
        x = x + self.drop1(self.attention(a, a, a, attn_mask=mask, need_weights=False)[0])
        return x + self.drop2(self.mlp(self.ln2(x)))


class TinyGPT(torch.nn.Module):
    def __init__(self, vocabulary, context=64, embed=64, heads=4, blocks=2, dropout=0.1):
        super().__init__()
        self.tokens, self.positions = torch.nn.Embedding(vocabulary, embed), torch.nn.Embedding(context, embed)
        torch.nn.init.normal_(self.positions.weight, std=0.02)  # as Phalanx's PositionalEmbedding (GPT-2's)
        self.drop = torch.nn.Dropout(dropout)
        self.blocks = torch.nn.ModuleList(Block(embed, heads, dropout) for _ in range(blocks))
        self.ln = torch.nn.LayerNorm(embed)
        self.head = torch.nn.Linear(embed, vocabulary)

    def forward(self, ids):
        t = ids.shape[1]
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), diagonal=1)
        x = self.drop(self.tokens(ids) + self.positions(torch.arange(t)))
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln(x))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["DigitsCNN", "TinyGPT"], required=True)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--context", type=int, default=64)
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    torch.set_num_threads(1)
    torch.manual_seed(42)
    if args.model == "DigitsCNN":
        rows = [list(map(int, line.split(","))) for line in open(os.path.join(RESOURCES, "optdigits.csv")) if line.strip()]
        data = torch.tensor([r[:64] for r in rows], dtype=torch.float32) / 16
        labels = torch.tensor([r[64] for r in rows])
        model = digits_cnn()

        def batch():
            index = torch.randint(0, len(rows), (args.batch_size,))
            return data[index], labels[index]

        def loss_of(x, y):
            return torch.nn.functional.cross_entropy(model(x), y)
    else:
        text = open(os.path.join(RESOURCES, "tinyshakespeare.txt"), encoding="utf-8").read()
        vocabulary = sorted(set(text))
        index = {c: i for i, c in enumerate(vocabulary)}
        ids = torch.tensor([index[c] for c in text[:int(len(text) * 0.9)]])  # the training part, as TinyGPT
        model = TinyGPT(len(vocabulary), context=args.context)

        def batch():
            starts = torch.randint(0, len(ids) - args.context - 1, (args.batch_size,))
            x = torch.stack([ids[s:s + args.context] for s in starts])
            y = torch.stack([ids[s + 1:s + args.context + 1] for s in starts])
            return x, y

        def loss_of(x, y):
            logits = model(x)
            return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    warmup = max(args.steps // 10, 2)
    for step in range(args.steps + warmup):
        if step == warmup:
            start = time.perf_counter()
        x, y = batch()
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(x, y)
        loss.backward()
        optimizer.step()
    seconds = (time.perf_counter() - start) / args.steps
    print(json.dumps({"model": args.model, "torch": torch.__version__, "threads": torch.get_num_threads(), "batch_size": args.batch_size,
                      "ms_per_step": 1000 * seconds, "samples_per_s": args.batch_size / seconds, "final_loss": loss.item()}))


if __name__ == "__main__":
    main()
