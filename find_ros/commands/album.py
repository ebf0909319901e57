"""`find-ros index` and `find-ros search`: interleaved album search (the paper's retrieval demo).

`index` encodes a folder of pictures once into an EmbeddingMemory (the same bounded, faiss-backed
memory the video localization node keeps); `search` answers "a room with <0>" + a crop, or plain
text, against it. The index remembers which model made it, because vectors of two models are not
comparable.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from find_ros.commands.model import IMAGE_BATCH, TOP_K, Timer, embed_files, list_images, load_model, model_options, report

ALBUM_FILE = "album.json"


def run_index(args: argparse.Namespace) -> int:
    import torch

    from find_ros.memory import EmbeddingMemory, MemorySettings

    folder = Path(args.folder)
    files = list_images(folder)
    timer = Timer()
    model, info = load_model(args, timer)
    with torch.inference_mode():
        t = time.perf_counter()
        vectors = embed_files(model, files, args.batch, progress=not args.json).cpu().numpy()
        timer.stage("encode_images", t)
    memory = EmbeddingMemory(MemorySettings(dim=vectors.shape[1], capacity=len(files)))
    for path, vector in zip(files, vectors):
        memory.add(vector, name=str(path.resolve()))
    out = memory.save(args.out)
    (out / ALBUM_FILE).write_text(json.dumps({"model": info["path"], "folder": str(folder.resolve()), "images": len(files)}, indent=1))
    report(args, info, {"index": str(out), "images": len(files), "timing_ms": timer.total()},
           [f"indexed {len(files)} image(s) from {folder} into {out}"])
    return 0


def run_search(args: argparse.Namespace) -> int:
    import torch

    from find_ros.image_io import read_rgb
    from find_ros.memory import EmbeddingMemory

    index = Path(args.index)
    album_file = index / ALBUM_FILE
    if not album_file.is_file():
        raise FileNotFoundError(f"{index} is not an album index ({ALBUM_FILE} missing); make one with `find-ros index`")
    album = json.loads(album_file.read_text())
    if args.model is None:
        args.model = album["model"]
    elif Path(args.model).resolve() != Path(album["model"]).resolve():
        raise ValueError(f"the index was made with {album['model']}; search it with the same model")
    memory = EmbeddingMemory.load(index)
    crops = [read_rgb(c) for c in args.crop or []]
    timer = Timer()
    model, info = load_model(args, timer)
    with torch.inference_mode():
        t = time.perf_counter()
        if crops or "<" in args.query or "[" in args.query:
            query = model.embed_instructions([model.encode_instruction(args.query, crops)])[0]
        else:
            query = model.embed_captions([args.query])[0]
        timer.stage("encode_query", t)
    t = time.perf_counter()
    matches = memory.search(query.cpu().numpy(), args.top_k)
    timer.stage("search", t)
    ranking = [{"image": m.name, "score": round(m.score, 6)} for m in matches]
    report(args, info, {"query": args.query, "ranking": ranking, "timing_ms": timer.total()},
           [f"{m['score']:.4f}  {m['image']}" for m in ranking])
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    index = subparsers.add_parser("index", help="encode a folder of images into an album index")
    index.add_argument("folder", help="folder of images")
    index.add_argument("--out", required=True, help="index directory to write")
    index.add_argument("--batch", type=int, default=IMAGE_BATCH, help=f"images encoded at once ({IMAGE_BATCH})")
    model_options(index, "model directory (default: the shipped model)")
    index.set_defaults(func=run_index)

    search = subparsers.add_parser("search", help="search an album index with text and image crops")
    search.add_argument("index", help="directory written by `find-ros index`")
    search.add_argument("query", help='query, e.g. "a table with <0> on it" or plain text')
    search.add_argument("--crop", action="append", metavar="PATH", help="image of visual entity <k> (in order)")
    search.add_argument("--top-k", type=int, default=TOP_K, help=f"images listed ({TOP_K})")
    model_options(search, "model directory (default: the one the index was made with)")
    search.set_defaults(func=run_search)
