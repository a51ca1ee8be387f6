"""The second core: a stage about to compute waits for the model's two-thread token to end; the model then writes on one."""

import threading
import time

from utils.core_share import WAIT_S, CoreShare


def test_the_model_takes_both_cores_only_while_no_stage_computes():
    cores = CoreShare()
    assert cores.both_cores(True)
    with cores.computing():
        assert not cores.both_cores(True)
    assert cores.both_cores(True)
    assert not cores.both_cores(False)  # the model itself says no (a sentence just went to the voice)


def test_a_stage_waits_for_the_token_under_way_on_both_cores_then_computes():
    cores = CoreShare()
    assert cores.both_cores(True)  # a token is being written on both cores
    started = []

    def stage():
        with cores.computing():
            started.append(time.monotonic())

    thread = threading.Thread(target=stage)
    thread.start()
    time.sleep(0.02)
    assert not started  # it waits for the token's end...
    token_end = time.monotonic()
    assert not cores.both_cores(True)  # ...which the model reports before its next token, on one core
    thread.join(1.0)
    assert started and started[0] >= token_end


def test_a_model_that_stops_reporting_holds_a_stage_back_no_longer_than_the_wait():
    cores = CoreShare()
    cores.both_cores(True)
    began = time.monotonic()
    with cores.computing():
        waited = time.monotonic() - began
    assert WAIT_S * 0.8 <= waited < 1.0
