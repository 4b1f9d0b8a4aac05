"""Simulated store: scenario -> shoppers' timeline -> what real devices emit, plus ground truth."""
from storefuse_core.simulation.scenario import Scenario, load_scenario  # noqa: F401
from storefuse_core.simulation.world import World, simulate  # noqa: F401
