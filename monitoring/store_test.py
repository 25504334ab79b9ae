"""The monitor's store reads the request log and the feedback incrementally: each line once, through
everything a server and the archive do to a log file, and joins labels to trips whichever arrives first."""

import csv
import io
import os
import threading
import time

import pytest

from models import features
from monitoring import archive, feedback, store
from serving import request_log
from tests.support import request_logs

NOW = 1_800_000_000.0


def _trip(request_id: str, trip: int = 0, fare: str = "10.0", prediction: float = 0.5, **more) -> dict:
    answered = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(NOW))
    return {"request_id": request_id, "trip": trip, "time": answered, "model_version": "7", "route": "stable",
            "prediction": prediction, "fare": fare, **more}  # fmt: skip


def _labels(folder, rows: list[dict], received: float = NOW) -> None:
    valid, refused = feedback.parse(rows, received=received)
    assert not refused
    feedback.FeedbackStore(folder).add(valid)


@pytest.fixture
def folders(tmp_path):
    log, labels = tmp_path / "request_log", tmp_path / "feedback"
    log.mkdir()
    labels.mkdir()
    return log, labels


def _count(trips: store.TripStore) -> tuple[int, int]:
    return trips.totals()


def test_labels_join_trips_whichever_arrives_first_and_unknown_ones_count_after_the_grace(folders):
    log, labels = folders
    request_logs.write_request_log(log, [_trip("a", 0, "10.0", 0.9), _trip("a", 1, "", 0.2)])
    _labels(labels, [
        {"request_id": "a", "tips": 2.5},  # 25 % of 10.00: a big tipper
        {"request_id": "a", "trip": 1, "tips": 1.0, "fare": 5.0},  # the fare only the feedback knows
        {"request_id": "b", "tips": 0},  # its trip is logged later
        {"request_id": "zzz", "tips": 1.0},  # no such trip
    ])  # fmt: skip
    trips = store.TripStore.of(labels)
    trips.sync(log, labels)
    assert trips.unjoined_labels(now=NOW + 10, grace_seconds=30) == (0, 2)
    assert trips.totals() == (2, 2)
    request_logs.write_request_log(log, [_trip("b", 0, "20.0", 0.1)], name="requests-2.csv")
    trips.sync(log, labels)
    assert trips.unjoined_labels(now=NOW + 31, grace_seconds=30) == (1, 0)  # zzz, past the grace
    assert trips.totals() == (3, 3)
    found = trips.labelled("7", "stable", NOW - 1, NOW + 1, limit=10)
    labels_by_prediction = {p: features.is_big_tipper(tips, fare) for _, p, _, tips, fare in found}
    assert labels_by_prediction == {0.9: True, 0.2: False, 0.1: False}  # 1.00 of 5.00 is 20 %: not above
    assert trips.unlabelled_predictions("7", NOW - 1, NOW + 1, limit=10) == []


def test_a_log_file_is_read_once_while_open_after_closing_and_after_a_recovery(folders):
    log, labels = folders
    trips = store.TripStore.of(labels)
    writer = request_log.RequestLog(log, "stable-7", flush_seconds=3600, max_bytes=10**9, max_seconds=3600)
    writer.append([request_logs.as_row(_trip("a")), request_logs.as_row(_trip("b"))])
    writer.flush()
    [open_file] = log.glob(f"*.csv{request_log.OPEN_SUFFIX}")
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(
        request_logs.as_row(_trip("c", company="a company\nwith a newline"))
    )
    torn = text.getvalue().index("\n") + 1  # inside the quoted value
    with open_file.open("a") as handle:  # a row half written when the store reads
        handle.write(text.getvalue()[:torn])
    assert trips.sync(log, labels)["trips"] == 2
    with open_file.open("a") as handle:
        handle.write(text.getvalue()[torn:])
    assert trips.sync(log, labels)["trips"] == 1
    writer.close()  # closed: renamed to .csv, the same lines
    assert not list(log.glob(f"*{request_log.OPEN_SUFFIX}"))
    assert trips.sync(log, labels)["trips"] == 0 and _count(trips) == (3, 0)

    # A writer that died mid-line: the next one recovers its file, cutting the torn line never read.
    dead = log / f"requests-20270115T080000000000Z-stable-7-{2**22 + 1}.csv{request_log.OPEN_SUFFIX}"
    request_logs.write_request_log(log, [_trip("d"), _trip("e")], name=dead.name)
    with dead.open("a") as handle:
        handle.write("f,0,2027-01")
    assert trips.sync(log, labels)["trips"] == 2
    assert request_log.recover(log) == [dead.with_name(dead.name.removesuffix(request_log.OPEN_SUFFIX))]
    assert trips.sync(log, labels)["trips"] == 0 and _count(trips) == (5, 0)


def test_an_archived_file_takes_its_trips_out_and_their_labels_wait_again(folders):
    log, labels = folders
    old = request_logs.write_request_log(log, [_trip("a"), _trip("b")], name="requests-old.csv")
    request_logs.write_request_log(log, [_trip("c")], name="requests-new.csv")
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    _labels(labels, [{"request_id": "a", "tips": 1.0}, {"request_id": "c", "tips": 1.0}])
    trips = store.TripStore.of(labels)
    trips.sync(log, labels)
    assert _count(trips) == (3, 2)

    moved = archive.archive_old_logs(log, retention_days=30)
    trips.sync(log, labels, archived=moved)

    assert _count(trips) == (1, 1)
    assert trips.unjoined_labels(now=NOW + 1, grace_seconds=0) == (1, 0)  # a's trip left the folder

    # A file shorter than what was read of it is another file under the same name: read again, whole.
    request_logs.write_request_log(log, [_trip("d", fare="")], name="requests-new.csv")
    trips.sync(log, labels)
    assert _count(trips) == (1, 0) and trips.unjoined_labels(now=NOW + 1, grace_seconds=0) == (2, 0)


def test_a_second_label_is_a_duplicate_for_every_writer_and_the_first_received_is_kept(folders):
    log, labels = folders
    request_logs.write_request_log(log, [_trip("a"), _trip("b")])
    _labels(labels, [{"request_id": "a", "tips": 3.0}])
    monitor, command_line = feedback.FeedbackStore(labels), feedback.FeedbackStore(labels)  # two processes
    again, _ = feedback.parse([{"request_id": "a", "tips": 0.0}, {"request_id": "b", "tips": 0.5}])
    stored, duplicates = command_line.add(again)
    assert [f.request_id for f in stored] == ["b"] and [f.request_id for f in duplicates] == ["a"]
    assert monitor.add(again[1:]) == ([], again[1:])
    # A feedback file written another way (copied in): a different label for a is a duplicate, counted,
    # and the one received first wins.
    (labels / "feedback-20270101-1.csv").write_text(
        "request_id,trip,tips,fare,received\na,0,9.0,,1.0\nb,0,0.5,,2.0\n"
    )
    trips = store.TripStore.of(labels)
    trips.sync(log, labels)
    assert trips.duplicates() == 2 and trips.totals() == (2, 2)
    assert trips.label_of("a", 0) == (9.0, None) and trips.label_of("b", 0) == (0.5, None)
    trips.sync(log, labels)
    assert trips.duplicates() == 2  # each line is read once


def test_a_sync_reads_only_what_is_new(folders):
    log, labels = folders
    request_logs.write_request_log(log, [_trip(f"r{i}") for i in range(50)])
    _labels(labels, [{"request_id": f"r{i}", "tips": 1.0} for i in range(50)])
    trips = store.TripStore.of(labels)
    # The labels were stored on arrival, and the lines the feedback store appended are known to be read.
    assert trips.sync(log, labels) == {"trips": 50, "labels": 0}
    assert trips.sync(log, labels) == {"trips": 0, "labels": 0}
    request_logs.write_request_log(log, [_trip(f"s{i}") for i in range(5)], name="requests-2.csv")
    _labels(labels, [{"request_id": "s0", "tips": 1.0}])
    with (labels / "feedback-20270101-1.csv").open("w") as other:  # another writer's, unknown to the store
        other.write("request_id,trip,tips,fare,received\ns1,0,2.0,,1.0\ns2,0,2.0,,1.0\n")
    assert trips.sync(log, labels) == {"trips": 5, "labels": 2}
    assert trips.sync(log, labels) == {"trips": 0, "labels": 0}
    assert trips.totals() == (55, 53)


def test_processes_reading_the_same_log_at_once_store_each_trip_once(folders):
    log, labels = folders
    stores = [store.TripStore.of(labels) for _ in range(3)]  # the monitor, the loop, the page
    errors = []

    def sync_until(done: threading.Event, trips: store.TripStore) -> None:
        try:
            while not done.is_set():
                trips.sync(log, labels)
        except Exception as error:  # reported below: a thread's failure must fail the test
            errors.append(error)

    done = threading.Event()
    readers = [threading.Thread(target=sync_until, args=(done, trips)) for trips in stores[1:]]
    for reader in readers:
        reader.start()
    writer = request_log.RequestLog(log, "stable-7", flush_seconds=3600, max_bytes=4000, max_seconds=3600)
    for batch in range(40):
        writer.append([request_logs.as_row(_trip(f"b{batch}-{i}")) for i in range(25)])
        writer.flush()  # rotates past 4,000 bytes: files open, grow and close while read
    writer.close()
    done.set()
    for reader in readers:
        reader.join()
    stores[0].sync(log, labels)
    assert not errors and [trips.totals() for trips in stores] == [(1000, 0)] * 3
