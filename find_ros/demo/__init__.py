"""The perception demo (`make demo`, `find-ros demo`): the whole graph on a synthetic walk-through.

1. Render a trajectory of the synthetic world (rosbag2 + ground truth) unless one is there already.
2. Start the perception graph (`find-ros perception`, both nodes) in its own process, DDS on loopback.
3. Send instructions naming the scene's objects: text ("[the red cone]") and visual ("<0>" with a crop
   of the object cut from a frame where it is fully visible) (scene_instructions).
4. Play the bag. Frames go out in lockstep: the next frame leaves once the results of this one are in
   (or a timeout passes), so every frame is grounded however slow the CPU; real-time behaviour is
   what benchmarks/perception.py measures (run).
5. Score each grounding against the ground-truth instance mask of its frame (IoU), ask the localization
   node for the top-k frames of each text instruction and check that the object is visible in one
   (scoring).
6. Write overlay images and an overlay video (overlays), and report.json, under the output folder;
   print the table (report).
"""

from find_ros.demo.report import print_report
from find_ros.demo.run import DemoSettings, run_demo
from find_ros.demo.scoring import DemoReport, InstructionScore

__all__ = ["DemoReport", "DemoSettings", "InstructionScore", "print_report", "run_demo"]
