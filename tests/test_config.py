"""The shipped node parameters agree with the code's defaults (a silent drift here once made a live
run and its offline replay disagree)."""
import yaml

from storefuse_core.shelf import ShelfParams

from sftest import ROOT


def test_detector_parameters_in_config_equal_the_defaults():
    doc = yaml.safe_load((ROOT / "config" / "storefuse.yaml").read_text())
    detector = doc["/**"]["ros__parameters"]["detector"]
    assert detector == ShelfParams().as_dict()
