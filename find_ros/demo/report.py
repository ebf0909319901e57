"""The demo's table: per instruction the frames scored, the mean IoU, the 3D error (median distance of
the published position to the visible surface and to the object's centre) and the localization hit;
then presence per entity kind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from find_ros.demo.scoring import DemoReport


def print_report(report: DemoReport, out: Path, log: Any = print) -> None:
    log("")
    log(f"{'instruction':58s} {'frames':>6s} {'IoU':>6s} {'found':>5s} {'IoU f.':>6s} {'3D surf':>7s} {'centre':>6s}  "
        f"top-{report.top_k} hit (chance)")
    for s in report.instructions:
        hit = "-" if s.localization_hit is None else f"{'yes' if s.localization_hit else 'no':3s} ({s.localization_chance:.2f})"
        log(f"{s.text[:58]:58s} {s.frames_scored:6d} {s.mean_iou:6.3f} {s.frames_found:5d} {_figure(s.mean_iou_found):>6s} "
            f"{_metres(s.median_surface_error_m):>7s} {_metres(s.median_centre_error_m):>6s}  {hit}")
    log(f"\nmodel {report.model} on {report.device}: {report.frames_played} frames, {report.results_received} results; "
        f"mean grounding IoU {report.mean_iou:.3f} (0 where not found), {_figure(report.mean_iou_found)} where found; localization {report.localization_hits}/{report.localization_queries} "
        f"in top {report.top_k} (top_k {report.top_k})")
    log(f"3D: {report.results_with_position} results with a position; median distance to the visible surface "
        f"{_metres(report.median_surface_error_m)}, to the object centre {_metres(report.median_centre_error_m)} "
        "(camera optical frame)")
    for figure in report.presence:
        log(f"presence of {figure['kind']} entities: AUROC {_figure(figure['auroc'])}, found precision "
            f"{_figure(figure['precision'])} recall {_figure(figure['recall'])} "
            f"({figure['present']} frames in view, {figure['absent']} without the object)")
    log(f"overlays, video and report.json in {out}")


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _metres(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}cm"
