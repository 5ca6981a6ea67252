"""A rate split between the processes that count it side by side."""

from bot.core.rate_limits import Rate


def test_a_share_of_a_rate_is_an_equal_part_never_under_one_token() -> None:
    rate = Rate(burst=400, per_second=20)
    assert rate.share(1) is rate
    assert rate.share(4) == Rate(100, 5)
    assert Rate(burst=2, per_second=1).share(4) == Rate(1, 0.25)
