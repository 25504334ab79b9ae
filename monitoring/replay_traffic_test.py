"""The replay's tips: as they were in the clean scenario; in the concept scenario big tippers tip
nothing, the change no feature shows."""

from models import features
from monitoring import replay_traffic

HEADER = [features.FARE, features.TIPS, "payment_type"]


def test_only_the_concept_scenario_zeroes_big_tippers_tips():
    big, small = ["10.0", "3.0", "Credit Card"], ["10.0", "1.0", "Cash"]
    assert features.is_big_tipper(3.0, 10.0) and not features.is_big_tipper(1.0, 10.0)
    assert replay_traffic.feedback_tips(HEADER, big, "clean") == 3.0
    assert replay_traffic.feedback_tips(HEADER, big, "concept") == 0.0
    assert replay_traffic.feedback_tips(HEADER, small, "concept") == 1.0
