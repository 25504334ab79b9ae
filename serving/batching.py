"""Requests that wait together are predicted together, as TF Serving's batching does.

A model call costs about the same for one trip as for a hundred (TensorFlow's per-op cost dominates, not
the arithmetic), so a server answering one request per call saturates at a few hundred requests a second
and then queues. Here the model runs in one thread of its own while the event loop keeps reading
requests; when a call ends, every request that arrived meanwhile goes into the next call, up to
`max_trips`. An idle server therefore calls the model at once for a lone request (no batching window,
no added latency), and a busy one pays one call per wave of requests instead of one per request.

A small call of a model whose recent small calls were quick is made on the event loop itself: handing a
0.2 ms call to the model thread and back costs more CPU than the call (two thread wake-ups; py-spy put
them at a third of a server's CPU at 200 requests a second), and holding the loop that long delays no
one. A model that is slow, or not yet timed, is always called in its thread, so the loop keeps answering
(readiness, a shadow's copies) while it works.

Only requests for the same loaded model are merged; a call that fails fails each request in it (the
model's fault, answered 500), and the next call goes on.
"""

import asyncio
import collections
import concurrent.futures
import dataclasses
import itertools
import time

from config import serving as serving_config
from serving.request_contract import Batch

SMALL_CALLS_KEPT = 8


def _timed_call(model, batch: Batch) -> tuple[list[float], float]:
    """The model's answer and how long it took, hand-over to its thread excluded."""
    started = time.perf_counter()
    return model.predict(batch), time.perf_counter() - started


@dataclasses.dataclass
class _Waiting:
    model: object  # a loaded model with `predict(Batch) -> list[float]`
    batch: Batch
    answer: asyncio.Future


class RequestBatcher:
    def __init__(self, max_trips: int, inline_max_trips: int = serving_config.INLINE_CALL_MAX_TRIPS,
                 inline_max_seconds: float = serving_config.INLINE_CALL_MAX_SECONDS):  # fmt: skip
        self.max_trips = max_trips
        self.inline_max_trips, self.inline_max_seconds = inline_max_trips, inline_max_seconds
        self.calls = 0  # model calls made, and the trips they carried: what batching saved shows in both
        self.trips = 0
        self.inline_calls = 0  # of `calls`, those made on the event loop
        self._waiting: list[_Waiting] = []
        self._draining = False
        self._model_thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="model")
        self._small_calls_of = None  # the model whose last small calls' seconds are kept
        self._small_calls: collections.deque[float] = collections.deque(maxlen=SMALL_CALLS_KEPT)

    async def predict(self, model, batch: Batch) -> list[float]:
        """The batch's probabilities, from a model call it may share with other waiting requests."""
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(model, batch, answer))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await answer

    def close(self) -> None:
        self._model_thread.shutdown(wait=False, cancel_futures=True)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                group = self._next_group()
                merged = merge([waiting.batch for waiting in group])
                model = group[0].model
                try:
                    if self._quick(model, merged.size):
                        probabilities, seconds = _timed_call(model, merged)
                        self.inline_calls += 1
                    else:
                        probabilities, seconds = await loop.run_in_executor(
                            self._model_thread, _timed_call, model, merged
                        )
                except Exception as error:  # answered per request as the model's fault (500)
                    for waiting in group:
                        if not waiting.answer.done():
                            waiting.answer.set_exception(error)
                    continue
                if merged.size <= self.inline_max_trips:
                    self._timed(model, seconds)
                self.calls += 1
                self.trips += merged.size
                start = 0
                for waiting in group:
                    if not waiting.answer.done():  # a client that went away leaves a cancelled future
                        waiting.answer.set_result(probabilities[start : start + waiting.batch.size])
                    start += waiting.batch.size
        finally:
            self._draining = False

    def _quick(self, model, trips: int) -> bool:
        """Whether a call of `trips` trips is quick enough to make on the loop: the fastest of the model's
        last small calls (the machine's other work delays a few; a slow model is slow every time)."""
        return (
            trips <= self.inline_max_trips
            and model is self._small_calls_of
            and (min(self._small_calls, default=float("inf")) <= self.inline_max_seconds)
        )

    def _timed(self, model, seconds: float) -> None:
        if model is not self._small_calls_of:
            self._small_calls_of, self._small_calls = model, collections.deque(maxlen=SMALL_CALLS_KEPT)
        self._small_calls.append(seconds)

    def _next_group(self) -> list[_Waiting]:
        """The oldest waiting request and those after it for the same model, up to `max_trips` trips
        (the first is taken whatever its size: the contract already bounds a request's batch)."""
        first = self._waiting[0]
        group, kept, trips = [first], [], first.batch.size
        for waiting in self._waiting[1:]:
            if waiting.model is first.model and trips + waiting.batch.size <= self.max_trips:
                group.append(waiting)
                trips += waiting.batch.size
            else:
                kept.append(waiting)
        self._waiting = kept
        return group


def merge(batches: list[Batch]) -> Batch:
    """One batch holding the trips of `batches`, in order."""
    if len(batches) == 1:
        return batches[0]
    columns = {
        name: list(itertools.chain.from_iterable(batch.columns[name] for batch in batches))
        for name in batches[0].columns
    }
    return Batch(columns=columns, size=sum(batch.size for batch in batches), missing={}, out_of_domain={})
