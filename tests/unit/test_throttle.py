from bot.throttle import Throttle


class Ticks:
    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at


def test_one_event_a_key_per_interval() -> None:
    ticks = Ticks()
    throttle = Throttle(every=60.0, now=ticks)
    assert throttle.due(("token_invalid", "10.0.0.1"))
    assert not throttle.due(("token_invalid", "10.0.0.1"))
    assert throttle.due(("token_invalid", "10.0.0.2"))  # another address
    assert throttle.due(("token_header", "10.0.0.1"))  # another kind
    ticks.at += 59.9
    assert not throttle.due(("token_invalid", "10.0.0.1"))
    ticks.at += 0.1
    assert throttle.due(("token_invalid", "10.0.0.1"))


def test_many_keys_are_forgotten_rather_than_kept() -> None:
    ticks = Ticks()
    throttle = Throttle(every=60.0, most=3, now=ticks)
    for peer in range(4):
        assert throttle.due(peer)
    assert not throttle.due(3)
    assert throttle.due(4)  # past 3 keys: all forgotten, so 0 is due again
    assert throttle.due(0)
