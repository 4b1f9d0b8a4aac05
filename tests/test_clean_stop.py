"""What a node's main loop calls a clean stop: rclpy errors count only once the context is shut down.

A SIGINT shuts the context down from rclpy's own signal thread, under a spinning executor; the error
that race raises out of rclpy (an RCLError building the wait set, a RuntimeError taking a message) is a
stop, and the same error with the context still up is a bug that must not pass for one.
"""
from __future__ import annotations

import threading

import pytest
import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException

from storefuse_nodes.common import STOPPED, clean_stop


@pytest.fixture
def context():
    ctx = Context()
    rclpy.init(context=ctx)
    yield ctx
    ctx.try_shutdown()


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), ExternalShutdownException()])
def test_an_interrupt_is_always_a_clean_stop(context, exc):
    assert isinstance(exc, STOPPED)
    assert clean_stop(exc, context=context, settle_s=0.0)


@pytest.mark.parametrize("exc", [RuntimeError("Unable to convert call argument '0' to Python object"),
                                 RCLError("failed to create wait set")])
def test_an_rclpy_error_with_the_context_up_is_a_real_error(context, exc):
    assert isinstance(exc, STOPPED)
    assert not clean_stop(exc, context=context, settle_s=0.05)


@pytest.mark.parametrize("exc", [RuntimeError("Unable to convert call argument '0' to Python object"),
                                 RCLError("failed to create wait set")])
def test_an_rclpy_error_while_the_context_shuts_down_is_a_clean_stop(context, exc):
    stopper = threading.Thread(target=context.shutdown)     # as rclpy's signal thread does
    stopper.start()
    try:
        assert clean_stop(exc, context=context, settle_s=10.0)
    finally:
        stopper.join()
    assert not context.ok()
