"""Picture type (I/P/B) of a compressed packet, read from the bitstream without decoding.

H.264 and HEVC: the ``slice_type`` of the first slice header of the access unit (length-prefixed
``avcC``/``hvcC`` payloads as stored in MP4/MKV, or Annex-B start codes), after removing
emulation-prevention bytes. MPEG-4 Part 2: ``vop_coding_type`` after the VOP start code. MPEG-1/2:
``picture_coding_type`` after the picture start code. Other codecs: ``I`` for keyframes, ``P`` otherwise.

Codes match PyAV's ``VideoFrame.pict_type`` integers (1 I, 2 P, 3 B); SP/SI slices and MPEG-4 S-VOPs
are reported as P/I/P.
"""

from __future__ import annotations

PICT_UNKNOWN = 0
PICT_I = 1
PICT_P = 2
PICT_B = 3

_H264_SLICE = {0: PICT_P, 1: PICT_B, 2: PICT_I, 3: PICT_P, 4: PICT_I}
_HEVC_SLICE = {0: PICT_B, 1: PICT_P, 2: PICT_I}
_MPEG4_VOP = {0: PICT_I, 1: PICT_P, 2: PICT_B, 3: PICT_P}
_MPEG2_PIC = {1: PICT_I, 2: PICT_P, 3: PICT_B}

_HEADER_BYTES = 64  # slice headers we need fit easily in the first bytes of a NAL unit


def strip_emulation_prevention(data: bytes | memoryview, limit: int = _HEADER_BYTES) -> bytes:
    """Remove ``0x000003`` emulation-prevention bytes from the first ``limit`` bytes of a NAL unit."""
    head = bytes(data[:limit])
    if b"\x00\x00\x03" not in head:
        return head
    out = bytearray()
    zeros = 0
    for byte in head:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """MSB-first bit reader with Exp-Golomb support over a short byte string."""

    def __init__(self, data: bytes, offset_bits: int = 0):
        self._value = int.from_bytes(data, "big")
        self._nbits = 8 * len(data)
        self.pos = offset_bits

    def u(self, n: int) -> int:
        """Read ``n`` bits as an unsigned int."""
        if n == 0:
            return 0
        end = self.pos + n
        if end > self._nbits:
            raise EOFError("bitstream exhausted")
        value = (self._value >> (self._nbits - end)) & ((1 << n) - 1)
        self.pos = end
        return value

    def ue(self) -> int:
        """Read an unsigned Exp-Golomb code ``ue(v)``."""
        remaining = self._nbits - self.pos
        if remaining <= 0:
            raise EOFError("bitstream exhausted")
        rest = self._value & ((1 << remaining) - 1)
        if rest == 0:
            raise EOFError("bitstream exhausted")
        leading = remaining - rest.bit_length()
        self.pos += leading
        return self.u(leading + 1) - 1


def iter_annexb(data: bytes | memoryview):
    """Yield the NAL units of an Annex-B byte stream (start codes ``00 00 01``/``00 00 00 01``)."""
    buf = bytes(data)
    start = buf.find(b"\x00\x00\x01")
    while start != -1:
        begin = start + 3
        nxt = buf.find(b"\x00\x00\x01", begin)
        end = len(buf) if nxt == -1 else nxt
        # a 4-byte start code leaves one trailing zero on the previous unit; harmless for headers
        if end > begin:
            yield memoryview(buf)[begin:end]
        start = nxt


def iter_length_prefixed(data: bytes | memoryview, length_size: int):
    """Yield the NAL units of a length-prefixed (``avcC``/``hvcC``) sample."""
    buf = memoryview(bytes(data)) if not isinstance(data, memoryview) else data
    pos, total = 0, len(buf)
    while pos + length_size <= total:
        size = int.from_bytes(buf[pos : pos + length_size], "big")
        pos += length_size
        if size <= 0 or pos + size > total:
            # truncated/corrupt: hand out what is there so that the header can still be read
            if pos < total and size > 0:
                yield buf[pos:total]
            return
        yield buf[pos : pos + size]
        pos += size


def nal_length_size(codec_name: str, extradata: bytes | None) -> int | None:
    """NAL length-field size of an ``avcC``/``hvcC`` configuration record, or ``None`` for Annex-B."""
    if not extradata or extradata[0] != 1:
        return None
    if codec_name == "h264" and len(extradata) >= 7:
        return (extradata[4] & 3) + 1
    if codec_name == "hevc" and len(extradata) >= 23:
        return (extradata[21] & 3) + 1
    return None


class PictureTypeParser:
    """Callable ``(packet_bytes, is_keyframe) -> PICT_*`` for one stream.

    :meth:`parse` also says whether the picture can be a reference (H.264 ``nal_ref_idc != 0``;
    MPEG-4/MPEG-1/2 B pictures are never references; ``True`` when unknown); after each call
    :attr:`idr` says whether the packet was an instantaneous decoder refresh (H.264 NAL type 5, HEVC
    types 19/20: no later picture references an earlier one).

    Args:
        codec_name: FFmpeg decoder name of the stream.
        extradata: the codec context's extradata (``avcC``/``hvcC`` record or Annex-B parameter sets).
    """

    def __init__(self, codec_name: str, extradata: bytes | None):
        self.codec_name = codec_name
        self.length_size = nal_length_size(codec_name, extradata)
        self._hevc_extra_bits: dict[int, int] = {}
        self._ref = True
        self.idr = False
        if codec_name == "hevc" and extradata:
            for nal in self._extradata_nals(extradata):
                self._maybe_hevc_pps(nal)

    # -------------------------------------------------------------- public
    def __call__(self, data: bytes | memoryview, is_keyframe: bool) -> int:
        return self.parse(data, is_keyframe)[0]

    def parse(self, data: bytes | memoryview, is_keyframe: bool) -> tuple[int, bool]:
        """``(PICT_*, is_reference)`` of one packet (and :attr:`idr`)."""
        self._ref = True
        self.idr = False
        try:
            if self.codec_name == "h264":
                pict = self._h264(data)
            elif self.codec_name == "hevc":
                pict = self._hevc(data)
            elif self.codec_name == "mpeg4":
                pict = _mpeg4_vop_type(data)
            elif self.codec_name in ("mpeg1video", "mpeg2video"):
                pict = _mpeg2_picture_type(data)
            else:
                pict = PICT_UNKNOWN
        except (EOFError, IndexError, ValueError):
            pict = PICT_UNKNOWN
        if pict == PICT_UNKNOWN:
            pict = PICT_I if is_keyframe else PICT_P
        is_ref = self._ref
        if self.codec_name in ("mpeg4", "mpeg1video", "mpeg2video") and pict == PICT_B:
            is_ref = False
        return pict, bool(is_ref or is_keyframe)

    # -------------------------------------------------------------- helpers
    def _nals(self, data: bytes | memoryview):
        if self.length_size is not None:
            return iter_length_prefixed(data, self.length_size)
        return iter_annexb(data)

    def _extradata_nals(self, extradata: bytes):
        if extradata[0] != 1:
            yield from iter_annexb(extradata)
            return
        if len(extradata) < 23:
            return
        pos = 23
        for _ in range(extradata[22]):
            if pos + 3 > len(extradata):
                return
            count = int.from_bytes(extradata[pos + 1 : pos + 3], "big")
            pos += 3
            for _ in range(count):
                if pos + 2 > len(extradata):
                    return
                size = int.from_bytes(extradata[pos : pos + 2], "big")
                pos += 2
                yield memoryview(extradata)[pos : pos + size]
                pos += size

    def _h264(self, data: bytes | memoryview) -> int:
        for nal in self._nals(data):
            if len(nal) < 2:
                continue
            nal_type = nal[0] & 0x1F
            if nal_type in (1, 5):
                self._ref = (nal[0] >> 5) & 3 != 0
                self.idr = nal_type == 5
                reader = BitReader(strip_emulation_prevention(nal[1:]))
                reader.ue()  # first_mb_in_slice
                return _H264_SLICE.get(reader.ue() % 5, PICT_UNKNOWN)
        return PICT_UNKNOWN

    def _maybe_hevc_pps(self, nal: memoryview) -> None:
        if len(nal) < 3 or (nal[0] >> 1) & 0x3F != 34:
            return
        try:
            reader = BitReader(strip_emulation_prevention(nal[2:]))
            pps_id = reader.ue()
            reader.ue()  # sps id
            reader.u(1)  # dependent_slice_segments_enabled_flag
            reader.u(1)  # output_flag_present_flag
            self._hevc_extra_bits[pps_id] = reader.u(3)
        except EOFError:
            return

    def _hevc(self, data: bytes | memoryview) -> int:
        for nal in self._nals(data):
            if len(nal) < 3:
                continue
            nal_type = (nal[0] >> 1) & 0x3F
            if nal_type == 34:
                self._maybe_hevc_pps(nal)
                continue
            if nal_type > 31:
                continue
            self.idr = nal_type in (19, 20)
            reader = BitReader(strip_emulation_prevention(nal[2:]))
            first_slice = reader.u(1)
            if 16 <= nal_type <= 23:
                reader.u(1)  # no_output_of_prior_pics_flag
            pps_id = reader.ue()
            if not first_slice:
                return PICT_UNKNOWN  # needs SPS geometry; not the first slice of the picture
            reader.u(self._hevc_extra_bits.get(pps_id, 0))
            return _HEVC_SLICE.get(reader.ue(), PICT_UNKNOWN)
        return PICT_UNKNOWN


def _mpeg4_vop_type(data: bytes | memoryview) -> int:
    buf = bytes(data)
    pos = buf.find(b"\x00\x00\x01\xb6")
    if pos == -1 or pos + 4 >= len(buf):
        return PICT_UNKNOWN
    return _MPEG4_VOP[buf[pos + 4] >> 6]


def _mpeg2_picture_type(data: bytes | memoryview) -> int:
    buf = bytes(data)
    pos = buf.find(b"\x00\x00\x01\x00")
    if pos == -1 or pos + 6 > len(buf):
        return PICT_UNKNOWN
    coding_type = ((buf[pos + 4] << 8 | buf[pos + 5]) >> 3) & 7
    return _MPEG2_PIC.get(coding_type, PICT_UNKNOWN)
