import os
import signal
import subprocess
import sys
import textwrap
import time

from evalcore.predictions import (
    Journal,
    PredictionRecord,
    failed,
    merge_records,
    read_records,
)


def read_predictions(log_dir):
    return merge_records(read_records(log_dir))


def test_append_and_merge_across_writers(tmp_path):
    with Journal(tmp_path, "a") as log:
        log.append(failed("1", "Timeout", "slow", attempts=1))
        log.append(PredictionRecord("2", "ok", "B"))
    with Journal(tmp_path, "b") as log:
        log.append(failed("1", "Timeout", "slow", attempts=2))
        log.append(PredictionRecord("3", "failed", error_type="X", error="x"))
    merged = read_predictions(tmp_path)
    assert merged["1"].attempts == 2 and not merged["1"].ok
    assert merged["2"].prediction == "B"
    with Journal(tmp_path, "c") as log:
        log.append(PredictionRecord("1", "ok", "A", attempts=3))
    merged = read_predictions(tmp_path)
    assert merged["1"].ok and merged["1"].prediction == "A"  # a success beats any failure
    assert sorted(merged) == ["1", "2", "3"]


def test_torn_tail_is_repaired_on_open(tmp_path):
    path = tmp_path / "w.jsonl"
    with Journal(tmp_path, "w") as log:
        log.append(PredictionRecord("1", "ok", "A"))
    with open(path, "a") as f:
        f.write('{"sample_id": "2", "sta')  # a writer killed mid-line
    assert list(read_predictions(tmp_path)) == ["1"]
    with Journal(tmp_path, "w") as log:
        log.append(PredictionRecord("3", "ok", "C"))
    assert sorted(read_predictions(tmp_path)) == ["1", "3"]
    assert path.read_text().count("\n") == 2


def test_records_survive_sigkill_of_the_writer(tmp_path):
    """A real writer process killed with SIGKILL: every line it finished is readable."""
    script = textwrap.dedent(
        f"""
        import sys
        from evalcore.predictions import Journal, PredictionRecord
        log = Journal({str(tmp_path)!r}, "w", fsync_every=1000)
        i = 0
        while True:
            log.append(PredictionRecord(str(i), "ok", "A" * 200))
            i += 1
            if i == 500:
                print("ready", flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    records = read_predictions(tmp_path)
    assert len(records) >= 500
    assert sorted(int(k) for k in records) == list(range(len(records)))  # no gaps
