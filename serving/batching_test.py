import asyncio
import threading
import time

from serving.batching import RequestBatcher
from serving.request_contract import Batch


class RecordingModel:
    """Answers each trip with its fare doubled, after `seconds`, and records the size of every call."""

    def __init__(self, seconds: float = 0.0, fail: bool = False):
        self.seconds, self.fail = seconds, fail
        self.call_sizes: list[int] = []
        self.on_loop: list[bool] = []  # per call: made in the event loop's thread (else the model's)
        self.started = threading.Event()

    def predict(self, batch: Batch) -> list[float]:
        self.started.set()
        self.on_loop.append(threading.current_thread() is threading.main_thread())
        time.sleep(self.seconds)
        self.call_sizes.append(batch.size)
        if self.fail:
            raise RuntimeError("the model failed")
        return [2.0 * fare for fare in batch.columns["fare"]]


def _batch(*fares: float) -> Batch:
    return Batch(columns={"fare": list(fares)}, size=len(fares), missing={}, out_of_domain={})


async def _while_busy(batcher: RequestBatcher, model, first: Batch, later: list[Batch], other_model=None):
    """Sends `first`, then, once the model is busy with it, every batch of `later` at once."""
    first_answer = asyncio.ensure_future(batcher.predict(model, first))
    await asyncio.get_running_loop().run_in_executor(None, model.started.wait, 5)
    later_answers = [batcher.predict(other_model or model, batch) for batch in later]
    return await asyncio.gather(first_answer, *later_answers, return_exceptions=True)


def test_requests_that_wait_together_share_one_call_and_each_gets_its_own_answers():
    model, batcher = RecordingModel(seconds=0.2), RequestBatcher(max_trips=100)
    answers = asyncio.run(
        _while_busy(batcher, model, _batch(1.0), [_batch(2.0, 3.0), _batch(4.0), _batch(5.0)])
    )
    assert answers == [[2.0], [4.0, 6.0], [8.0], [10.0]]
    assert model.call_sizes == [1, 4]
    assert (batcher.calls, batcher.trips) == (2, 5)


def test_a_lone_request_is_answered_by_a_call_of_its_own():
    model, batcher = RecordingModel(), RequestBatcher(max_trips=100)

    async def one_after_another():
        return [await batcher.predict(model, _batch(float(fare))) for fare in range(3)]

    assert asyncio.run(one_after_another()) == [[0.0], [2.0], [4.0]]
    assert model.call_sizes == [1, 1, 1]


def test_a_call_never_carries_more_than_max_trips():
    model, batcher = RecordingModel(seconds=0.2), RequestBatcher(max_trips=3)
    answers = asyncio.run(
        _while_busy(batcher, model, _batch(1.0), [_batch(2.0, 3.0), _batch(4.0), _batch(5.0)])
    )
    assert answers == [[2.0], [4.0, 6.0], [8.0], [10.0]]
    assert model.call_sizes == [1, 3, 1]


def test_requests_for_different_models_are_never_merged():
    first, second = RecordingModel(seconds=0.2), RecordingModel()
    batcher = RequestBatcher(max_trips=100)
    answers = asyncio.run(_while_busy(batcher, first, _batch(1.0), [_batch(2.0), _batch(3.0)], second))
    assert answers == [[2.0], [4.0], [6.0]]
    assert (first.call_sizes, second.call_sizes) == ([1], [2])


def test_a_failing_call_fails_each_of_its_requests_and_the_next_call_goes_on():
    failing, batcher = RecordingModel(seconds=0.2, fail=True), RequestBatcher(max_trips=100)
    answers = asyncio.run(_while_busy(batcher, failing, _batch(1.0), [_batch(2.0), _batch(3.0)]))
    assert all(isinstance(answer, RuntimeError) for answer in answers)
    assert failing.call_sizes == [1, 2]

    healthy = RecordingModel()
    assert asyncio.run(batcher.predict(healthy, _batch(7.0))) == [14.0]


def test_a_quick_model_is_called_on_the_loop_for_small_batches_a_slow_one_never():
    """The first call is timed in the model's thread; after it, a quick model's small calls are made on the
    loop, a large batch still in the thread; a model slower than INLINE_CALL_MAX_SECONDS stays there."""

    async def calls(batcher, model, sizes):
        for size in sizes:
            await batcher.predict(model, _batch(*[1.0] * size))

    quick, batcher = (
        RecordingModel(),
        RequestBatcher(max_trips=100, inline_max_trips=10, inline_max_seconds=0.05),
    )
    asyncio.run(calls(batcher, quick, [1, 1, 10, 11, 1]))
    assert quick.on_loop == [False, True, True, False, True]
    assert batcher.inline_calls == 3

    slow, batcher = (
        RecordingModel(seconds=0.1),
        RequestBatcher(max_trips=100, inline_max_trips=10, inline_max_seconds=0.05),
    )
    asyncio.run(calls(batcher, slow, [1, 1, 1]))
    assert slow.on_loop == [False, False, False] and batcher.inline_calls == 0
