from llmplay.pacing import Pacer


def test_the_first_call_is_due_then_at_most_once_per_interval():
    pacer = Pacer(every_s=0.5)  # times in binary fractions: exact sums
    assert pacer.due(now=5.0)
    assert not pacer.due(now=5.25)
    assert not pacer.due(now=5.4375)
    assert pacer.due(now=5.5)
    assert not pacer.due(now=5.75)  # measured from the last due call, not the first
    assert pacer.due(now=6.5)
