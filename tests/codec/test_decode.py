"""The decode loop's damaged-packet rule: ONE_PASS_ERROR_POLICY (a cap on all failures of the pass)."""

from __future__ import annotations

from types import SimpleNamespace

from transformers_llava_ov2.codec import decode
from transformers_llava_ov2.video.container import ONE_PASS_ERROR_POLICY


class _Packet:
    size = 1
    pts = None

    def __init__(self, ok: bool):
        self.ok = ok

    def decode(self) -> list:
        if not self.ok:
            raise ValueError("damaged packet")
        return []


def _run_packets(packets: list[_Packet]) -> tuple[decode.DecodeReport, bool]:
    report = decode.DecodeReport()
    loop = decode._DecodeLoop(
        SimpleNamespace(frame_index=lambda pts: None),  # type: ignore[arg-type]
        set(),
        report=report,
        index_by_order=False,
        ledger=decode.ReleaseLedger(),
    )
    stream = SimpleNamespace(codec_context=SimpleNamespace(skip_frame="DEFAULT"))
    gen = decode._decode_packets(iter(packets), stream, loop, set(), 10**9)  # type: ignore[arg-type]
    try:
        next(gen)
    except StopIteration as stop:
        return report, stop.value
    raise AssertionError("no frame was expected")


def test_damaged_packets_up_to_the_cap_are_skipped_and_recorded():
    cap = ONE_PASS_ERROR_POLICY.max_total
    report, consumer_stayed = _run_packets([_Packet(False)] * cap + [_Packet(True)])
    assert consumer_stayed and not report.stopped_early
    assert len(report.errors) == cap and report.errors[0] == "decode: damaged packet"


def test_the_cap_counts_all_failures_not_only_runs():
    cap = ONE_PASS_ERROR_POLICY.max_total
    report, _ = _run_packets([_Packet(ok) for _ in range(2 * cap) for ok in (False, True)])
    assert report.stopped_early
    assert len(report.errors) == cap + 1  # the pass stops at the first failure over the cap
