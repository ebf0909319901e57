"""`ns-train find-field`: FIND embeddings distilled into a 3D feature field (a nerfstudio method),
queried by text, image crops or interleaved instructions.

What is distilled, and why: FIND's image embedding (``embed_images``) of multi-scale crops of
every training image (LERF's recipe with FIND in CLIP's place) — the image-side FIND embedding that
captions (``embed_captions``) and interleaved instructions (``embed_instructions``) are trained to
match without seeing the image, as a 3D query must; crop queries use ``embed_images`` itself, the
teacher's own function. FIND's dense per-pixel embeddings (prompt-free proposals' semantics x
masks) are the other teacher (``--pipeline.model.teacher dense``). The measurements behind the
default are in :mod:`find_ros.fields.teacher`.

Train and query::

    ns-train find-field --data DATA [--pipeline.model.find-model MODEL_DIR]      # or: ... nerfstudio-data --data DATA
    find-ros field query --config outputs/.../config.yml --text "the red cone" --out cloud.ply

Module map (one idea each): pyramid (crop geometry, bilinear teacher lookup), teacher (FIND
embeddings, teacher and query side), cache (bounded on-disk teacher cache), targets (a training
set's teacher in memory), feature_field (hash grid + MLP head), relevancy (LERF relevancy, viewer
colours), model / datamanager / pipeline / method (the nerfstudio method; depth supervision when
the dataset has depth images), schedule (float learning-rate schedule: weights-only checkpoints),
loading (reading a trained run back safely), query (a query's data: what it looks for, the point
cloud, the settings), cloud (rendering and caching the point cloud), grounded (FIND's grounding in
the views, lifted and voted), locate (answering a query: score, region, PLY).
Importing this package imports neither nerfstudio nor FIND; the submodules that need them do.
"""
