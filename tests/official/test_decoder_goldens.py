"""The authors' decoder, prompts and read-outs through the public FindModel API on converted
fixture checkpoints: every golden within the atol golden.json gives it, chosen indices identical
(find-official README §3, §5, §6). The converted model's config selects decoder style
"official"; these tests only say which image size the fixtures' network input has."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from find_ros.model import FindModel
from find_ros.model.convert import import_find
from find_ros.model.readout import (
    class_logits,
    match_logits,
    resize_chosen,
    semantic_scores,
    upsample_masks,
)

from .conftest import atol, golden_meta, language_dir, network_input

_MODELS: dict[str, Path] = {}


@pytest.fixture
def official(fixture_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> FindModel:
    """The fixture's checkpoint converted once per run, loaded fresh for each test."""
    if fixture_dir.name not in _MODELS:
        out = tmp_path_factory.mktemp(f"official_{fixture_dir.name}") / "model"
        import_find(fixture_dir / "checkpoint.pt", out, config_path=fixture_dir / "config.yaml",
                    language=str(language_dir(fixture_dir)))
        _MODELS[fixture_dir.name] = out
    model = FindModel.from_pretrained(_MODELS[fixture_dir.name], device="cpu")
    assert model.config.decoder_style == "official"
    # The fixtures' images are the exact network input (README §3): the authors' shortest-edge
    # rule with their own sizes leaves them as they are.
    height, width = network_input(fixture_dir).shape[:2]
    model.config.resize_rule, model.config.input_size, model.config.max_input_size = \
        "shortest_edge", min(height, width), max(height, width)
    return model


class Goldens:
    def __init__(self, directory: Path) -> None:
        self.tensors = load_file(str(directory / "golden.safetensors"))
        self.meta = golden_meta(directory)
        self.prompts = json.loads((directory / "prompts.json").read_text())
        self.worst: dict[str, float] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.tensors[name]

    def close(self, name: str, ours: torch.Tensor) -> float:
        golden = self.tensors[name]
        ours = ours.detach().float().reshape(golden.shape) if ours.numel() == golden.numel() else ours
        assert tuple(ours.shape) == tuple(golden.shape), f"{name}: shape {tuple(ours.shape)} != {tuple(golden.shape)}"
        worst = float((ours - golden.float()).abs().max())
        self.worst[name] = worst
        assert worst <= atol(self.meta, name), f"{name}: max |ours - golden| = {worst:.3g} > {atol(self.meta, name)}"
        return worst

    def equal(self, name: str, ours: torch.Tensor | np.ndarray) -> None:
        golden = self.tensors[name]
        assert torch.equal(torch.as_tensor(np.asarray(ours)).to(golden.dtype).reshape(golden.shape), golden), name
        self.worst[name] = 0.0


@pytest.fixture
def goldens(fixture_dir: Path) -> Iterator[Goldens]:
    found = Goldens(fixture_dir)
    yield found
    # The largest difference per golden, for the record (shown with pytest -s).
    print(json.dumps({"fixture": fixture_dir.name, "worst": found.worst}))


def _texts(prompts: dict) -> dict[str, list[tuple[str, str, int]]]:
    """Golden prefix → (text, its golden key, token budget) per text the authors' code read."""
    out = {}
    classes = prompts["classes"]
    out["class"] = [(t, f"lang/class/{i}/0", classes["max_tokens"]) for i, t in enumerate(classes["prompts_after_template"])]
    out["grounding"] = [(t, f"lang/grounding/{i}", prompts["grounding"]["max_tokens"])
                        for i, t in enumerate(prompts["grounding"]["sentences"])]
    out["retrieval"] = [(t, f"lang/retrieval/{i}", prompts["retrieval"]["max_tokens"])
                        for i, t in enumerate(prompts["retrieval"]["captions"])]
    for task in ("interleave", "refint"):
        if task in prompts:
            out[task] = [(prompts[task]["sentence"], f"lang/{task}/0", prompts[task]["max_tokens"])]
    return out


def test_language_goldens(official: FindModel, goldens: Goldens) -> None:
    """LLaMA at hidden layer -12 over the real tokens (BOS included), then lang_proj."""
    encoder = official.language_encoder
    checked = 0
    with torch.no_grad():
        for texts in _texts(goldens.prompts).values():
            for text, key, budget in texts:
                if f"{key}/input_ids" not in goldens:
                    continue
                encoding = encoder([text], budget)
                real = encoding.attention_mask[0]
                goldens.equal(f"{key}/input_ids", torch.tensor(encoder.tokenizer([text])["input_ids"][0]))
                goldens.close(f"{key}/hidden_m12", encoding.tokens[0][real])
                goldens.close(f"{key}/token_emb", official.encode_texts([text], max_tokens=budget).tokens[0])
                checked += 1
    assert checked >= 6


def test_class_embeddings_and_generic_segmentation(official: FindModel, goldens: Goldens, fixture_dir: Path) -> None:
    names = goldens.prompts["classes"]["names"]
    assert names[-1] == "background"
    image = official.encode_image(network_input(fixture_dir))
    with torch.no_grad():
        out = official.run("generic_segmentation", image, **{"class": names})
    preds = out.predictions
    goldens.close("class/embeddings", preds.semantic["class"][0])
    logits = class_logits(official.heads, preds.semantic["object"][0], preds.semantic["class"][0], official.config.decoder)
    goldens.close("generic/pred_logits", logits)
    goldens.close("generic/pred_masks", preds.masks["object"][0])
    goldens.close("generic/pred_captions", preds.semantic["object"][0])
    goldens.close("generic/pred_retrievals", preds.semantic["image"][0])
    if "generic/sem_seg" in goldens:
        masks = upsample_masks(preds.masks["object"][0], image, 0, official.config.decoder.final_mask_resize)
        goldens.close("generic/sem_seg", semantic_scores(masks, logits))

    thing = set(goldens.prompts["classes"]["thing_classes"])
    # segment() adds "background" itself; the user names the classes only.
    result = official.segment(image, names[:-1], stuff=[n for n in names[:-1] if n not in thing])[0]
    goldens.equal("generic/panoptic_seg", result.panoptic)
    info = goldens.meta["generic"]["segments_info"]
    assert [(s.id, s.class_index, s.is_thing) for s in result.segments] == \
        [(s["id"], s["category_id"], s["isthing"]) for s in info]
    if "generic/instances/scores" in goldens:
        # top-k's unsorted order: compare as sets of (class, score, mask).
        ours = sorted((i.class_index, i.score) for i in result.instances)
        theirs = sorted(zip(goldens["generic/instances/pred_classes"].tolist(), goldens["generic/instances/scores"].tolist()))
        assert [c for c, _ in ours] == [c for c, _ in theirs]
        worst = max(abs(a - b) for (_, a), (_, b) in zip(ours, theirs))
        assert worst <= atol(goldens.meta, "generic/instances/scores"), worst
        golden_masks = {m.numpy().astype(bool).tobytes() for m in goldens["generic/instances/pred_masks"]}
        assert {i.mask.astype(bool).tobytes() for i in result.instances} == golden_masks


def test_grounding(official: FindModel, goldens: Goldens, fixture_dir: Path) -> None:
    sentences = goldens.prompts["grounding"]["sentences"]
    image = official.encode_image(network_input(fixture_dir))
    with torch.no_grad():
        out = official.run("grounded_segmentation", image, text=sentences)
    preds = out.predictions
    goldens.close("grounding/pred_gtexts", preds.semantic["grounding"][0])
    goldens.close("grounding/pred_grounding_query", preds.semantic["text"][0])
    goldens.close("grounding/pred_gmasks", preds.masks["grounding"][0])
    goldens.close("grounding/logits", match_logits(official.heads, out, preds).T)
    results = official.ground_phrases(image, sentences)[0]
    chosen = [e.proposal for e in results.entities]
    goldens.equal("grounding/chosen", torch.tensor(chosen))
    masks = upsample_masks(preds.masks["grounding"][0][chosen], image, 0, official.config.decoder.final_mask_resize)
    goldens.close("grounding/mask", masks)
    for entity, golden in zip(results.entities, goldens["grounding/mask"]):
        assert np.array_equal(entity.mask, golden.numpy() > 0)  # the evaluator's threshold


def test_retrieval(official: FindModel, goldens: Goldens, fixture_dir: Path) -> None:
    names = goldens.prompts["retrieval"]["images"]
    captions = goldens.prompts["retrieval"]["captions"]
    images = official.encode_image([network_input(fixture_dir, Path(goldens.prompts["images"][n]["file"]).name)
                                    for n in names])
    with torch.no_grad():
        out = official.run("image_text_retrieval", images, caption=captions)
    goldens.close("retrieval/image_embeds", out.predictions.semantic["image"][:, 0])
    goldens.close("retrieval/text_embeds", out.predictions.semantic["caption"][0])
    # The public calls: embeddings of images and captions made apart, then compared.
    result = official.retrieve(images, captions)
    goldens.close("retrieval/similarity", torch.as_tensor(result.similarity))
    assert torch.allclose(official.embed_captions(captions), torch.nn.functional.normalize(
        out.predictions.semantic["caption"][0].float(), dim=-1), atol=1e-6)


def _mask(directory: Path, name: str) -> np.ndarray:
    return network_input(directory, Path(name).name)[..., 0] > 127


def test_interactive(official: FindModel, goldens: Goldens, fixture_dir: Path) -> None:
    """Two strokes in one call: point samples through mask_sptial_embed, raw dot read-out."""
    from find_ros.model.embeddings import SpatialPrompt

    image = official.encode_image(network_input(fixture_dir))
    prompts = [SpatialPrompt("mask", _mask(fixture_dir, p["mask"]), group=i)
               for i, p in enumerate(goldens.prompts["interactive"]["prompts"])]
    with torch.no_grad():
        out = official.run("interactive_segmentation", image, spatial=prompts)
    preds = out.predictions
    goldens.close("interactive/pred_smaskembs", preds.pixel["segment"][0])
    goldens.close("interactive/pred_pspatials", preds.pixel["spatial"][0])
    goldens.close("interactive/pred_smasks", preds.masks["segment"][0])
    goldens.close("interactive/logits", match_logits(official.heads, out, preds).T)
    results = official.segment_interactive(image, prompts)[0]
    chosen = [e.proposal for e in results.entities]
    goldens.equal("interactive/chosen", torch.tensor(chosen))
    goldens.close("interactive/prev_mask", preds.masks["segment"][0][chosen])
    for entity, golden in zip(results.entities, goldens["interactive/mask"]):
        assert np.array_equal(entity.mask, golden.numpy().astype(bool))
    targets = [_mask(fixture_dir, p["target_segment_mask"]) for p in goldens.prompts["interactive"]["prompts"]]
    goldens.close("interactive/mask_iou", torch.tensor([[(e.mask & t).sum() / max(1, (e.mask | t).sum())]
                                                        for e, t in zip(results.entities, targets)]))


def _interleave_outputs(goldens: Goldens, task: str, out, heads) -> None:
    preds = out.predictions
    for name, value in (("pred_imaskembs", preds.pixel["entity"][0]), ("pred_interleave_objects", preds.semantic["entity"][0]),
                        ("pred_entity_pixel", preds.pixel["interleave"][0]), ("pred_entity_class", preds.semantic["interleave"][0]),
                        ("pred_imasks", preds.masks["entity"][0]), ("pred_interleave_image", preds.semantic["legend"][0])):
        if f"{task}/{name}" in goldens:
            goldens.close(f"{task}/{name}", value)
    goldens.close(f"{task}/logits", match_logits(heads, out, preds).T)


def _instruction(spec: dict) -> str:
    """The prompt's sentence in our grammar: text entities in brackets, visual ones as <k>."""
    text, pieces, at, visual = spec["sentence"], [], 0, 0
    for entity in sorted(spec["entities"], key=lambda e: e["start"]):
        pieces.append(text[at:entity["start"]])
        if entity["type"] == "visual":
            pieces.append(f"<{visual}>")
            visual += 1
        else:
            pieces.append(f"[{text[entity['start']:entity['end']]}]")
        at = entity["end"]
    return "".join(pieces) + text[at:]


def test_interleave_same_image(official: FindModel, goldens: Goldens, fixture_dir: Path) -> None:
    """A text entity and a stroke on the grounded image; "[INTERACTIVE]" tokens stay in the sentence."""
    from find_ros.model.embeddings import RegionRef

    spec = goldens.prompts["interleave"]
    image = official.encode_image(network_input(fixture_dir))
    strokes = [RegionRef(image, mask=_mask(fixture_dir, e["stroke_mask"])) for e in spec["entities"] if e["type"] == "visual"]
    instruction = official.encode_instruction(_instruction(spec), strokes)
    goldens.equal("interleave/entity_to_tokens", instruction.entity_groups)
    encoding = official.language_encoder([spec["sentence"]], spec["max_tokens"])  # the text the LM read
    goldens.equal("interleave/offsets", encoding.offsets[0][encoding.attention_mask[0]])
    with torch.no_grad():
        out = official.run("interleave_grounding", image, interleave=instruction)
    _interleave_outputs(goldens, "interleave", out, official.heads)
    results = official.ground(image, instruction)[0]
    chosen = [e.proposal for e in results.entities]
    goldens.equal("interleave/chosen", torch.tensor(chosen))
    goldens.close("interleave/mask", resize_chosen(out.predictions.masks["entity"][0][chosen], image, 0,
                                                   "direct_bicubic_antialias", "bilinear"))
    for entity, golden in zip(results.entities, goldens["interleave/mask"]):
        assert np.array_equal(entity.mask, golden.numpy() > 0)


def test_interleave_entity_from_another_image(official: FindModel, goldens: Goldens, fixture_dir: Path) -> None:
    """refint: the visual entity's samples come from image B's features; grounding runs on A."""
    from find_ros.model.embeddings import RegionRef

    spec = goldens.prompts["refint"]
    files = goldens.prompts["images"]
    target = official.encode_image(network_input(fixture_dir, Path(files[spec["target_image"]]["file"]).name))
    strokes = [RegionRef(official.encode_image(network_input(fixture_dir, Path(files[e["source_image"]]["file"]).name)),
                         mask=_mask(fixture_dir, e["stroke_mask"])) for e in spec["entities"] if e["type"] == "visual"]
    instruction = official.encode_instruction(_instruction(spec), strokes)
    goldens.equal("refint/entity_to_tokens", instruction.entity_groups)
    for level, samples in enumerate(instruction.samples.per_level):
        kept = goldens[f"refint/ref_tokens_masking_level{level}"] == 0  # the text entity's placeholder row is masked
        goldens.tensors[f"refint/ref_tokens_level{level}"] = goldens[f"refint/ref_tokens_level{level}"][kept]
        goldens.close(f"refint/ref_tokens_level{level}", samples[0])
    with torch.no_grad():
        out = official.run("interleave_grounding", target, interleave=instruction)
    _interleave_outputs(goldens, "refint", out, official.heads)
    chosen = [e.proposal for e in official.ground(target, instruction)[0].entities]
    goldens.equal("refint/chosen", torch.tensor(chosen))
    masks = upsample_masks(out.predictions.masks["entity"][0][chosen], target, 0, "bilinear")  # the demo's resize
    assert np.array_equal(masks.sigmoid().numpy() > 0.5, goldens["refint/mask"].numpy().astype(bool))
