"""`storefuse sim`: run a scenario without ROS, through the drivers' own core code, into a bag.

The frames go through ScaleBoard and GateReader exactly as the live drivers parse them, so the
bag holds what a live recording of the same scenario holds on its raw sensor topics.
"""
from __future__ import annotations

import json
from pathlib import Path

from storefuse_core import topics
from storefuse_core.bag import BagWriter
from storefuse_core.calibration import load_calibration
from storefuse_core.convert import (
    block_to_msg,
    cart_message,
    detections_to_msg,
    gate_event_to_msg,
    image_to_msg,
    product_views_to_msg,
    rosbags_factory,
    shelf_event_to_msg,
    watermark_to_msg,
)
from storefuse_core.gate import GateReader
from storefuse_core.scale import ScaleBoard
from storefuse_core.shelf import ShelfDetector, ShelfParams, config_json
from storefuse_core.simulation.cameras import CameraSim
from storefuse_core.simulation.devices import carts, devices
from storefuse_core.simulation.product_views import ProductViewSim
from storefuse_core.simulation.scenario import Scenario
from storefuse_core.simulation.world import T0_NS, World


def bag_custom_data(store, shelf_params: ShelfParams, scenario_text: str = "") -> dict[str, str]:
    """What a bag carries about its run so a replay needs nothing else."""
    import dataclasses
    data = {"storefuse.store": store.name, "storefuse.layout": store.source_text,
            "storefuse.shelf_params": json.dumps(dataclasses.asdict(shelf_params), sort_keys=True)}
    if scenario_text:
        data["storefuse.scenario"] = scenario_text
    return data


def run_offline(scenario: Scenario, out_dir: Path, chunk_s: float = 1.0, frames: bool = False) -> dict:
    store = scenario.store
    calibration = load_calibration(store.root / "calibration.yaml")
    world = World(scenario, calibration)
    gt = world.ground_truth()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ground_truth.json").write_text(json.dumps(gt, indent=1))
    params = ShelfParams()
    devs = devices(world)
    cart_sims = carts(world)
    camera_sim = CameraSim(world, frames=frames)
    view_sim = ProductViewSim(world)
    names = {sku: p.name for sku, p in store.products.items()}
    boards = {b: ScaleBoard(b, store.board_plates(b), calibration) for b in store.boards}
    detectors = {b: ShelfDetector(store, b, params) for b in store.boards}
    gates = {g: GateReader(g, store.token_secret()) for g in store.gates}
    with BagWriter(out_dir / "bag", bag_custom_data(store, params, scenario.text)) as bag:
        f = rosbags_factory(bag.typestore)
        for topic, msgtype in topics.RAW_TYPES.items():
            bag.add_topic(topic, msgtype)
        bag.add_topic(topics.SHELF_EVENTS, topics.TYPES[topics.SHELF_EVENTS])
        for b in store.boards:
            bag.write(topics.SHELF_CONFIG, topics.TYPES[topics.SHELF_CONFIG], T0_NS,
                      f("std_msgs/msg/String", data=config_json(b, params)))
        end_ns = T0_NS + int(gt["duration_s"] * 1e9)
        t = T0_NS
        while t < end_ns:
            t = min(end_ns, t + int(chunk_s * 1e9))
            for co in camera_sim.outputs_until(t):
                if co.detections is not None:
                    bag.write(topics.camera_topic(co.camera_id), topics.DETECTIONS_TYPE, co.t_ns,
                              detections_to_msg(f, co.camera_id, co.t_ns, co.detections))
                else:
                    bag.write(topics.camera_topic(co.camera_id, "image/compressed"), topics.IMAGE_TYPE, co.t_ns,
                              image_to_msg(f, co.camera_id, co.t_ns, co.jpeg))
            for ts, cid, views in view_sim.outputs_until(t):
                bag.write(topics.camera_topic(cid, "products"), topics.PRODUCTS_TYPE, ts,
                          product_views_to_msg(f, cid, ts, views, names))
            for sim in cart_sims.values():
                for cm in sim.messages_until(t):
                    leaf, msg = cart_message(f, cm)
                    bag.write(topics.cart_topic(cm.cart_id, leaf), topics.CART_TYPES[leaf], cm.t_ns, msg)
            frames = sorted(((ts, dev, fr) for dev, d in devs.items() for ts, fr in d.frames_until(t)),
                            key=lambda x: (x[0], x[1]))
            for ts, dev, frame in frames:
                if dev in boards:
                    block = boards[dev].feed(frame)
                    if block is not None:
                        bag.write(topics.PLATE_WEIGHTS, topics.TYPES[topics.PLATE_WEIGHTS], ts,
                                  block_to_msg(f, block, f"{dev.removeprefix('scale_')}_link"))
                        for ev in detectors[dev].process(block):
                            bag.write(topics.SHELF_EVENTS, topics.TYPES[topics.SHELF_EVENTS], ts,
                                      shelf_event_to_msg(f, ev))
                else:
                    ev = gates[dev].feed(frame)
                    if ev is not None:
                        bag.write(topics.GATE_EVENTS, topics.TYPES[topics.GATE_EVENTS], ts,
                                  gate_event_to_msg(f, ev))
                    bag.write(topics.GATE_WATERMARK, topics.TYPES[topics.GATE_WATERMARK], ts,
                              watermark_to_msg(f, dev, gates[dev].watermark_ns, gates[dev].events_out))
    return gt
