"""The numba versions of the codec kernels (imported only by :mod:`.kernels`, when numba is installed).

The rules and the reasons they equal the numpy versions are in :mod:`.kernels`.
"""

from __future__ import annotations

import numba
import numpy as np

jit = numba.njit(nogil=True, cache=True)


@numba.njit(inline="always")
def _bilinear(ref, x, y, ix, fx, iy, fy, h, w):
    xa, ya = x + ix, y + iy
    if xa >= 0 and xa + 1 < w and ya >= 0 and ya + 1 < h:  # inside: the clamps below change nothing
        x0, x1, y0, y1 = xa, xa + 1, ya, ya + 1
    else:
        x0, x1 = min(max(xa, 0), w - 1), min(max(xa + 1, 0), w - 1)
        y0, y1 = min(max(ya, 0), h - 1), min(max(ya + 1, 0), h - 1)
    a = np.float32(ref[y0, x0])
    b = np.float32(ref[y0, x1])
    c = np.float32(ref[y1, x0])
    d = np.float32(ref[y1, x1])
    top = a + (b - a) * fx
    bottom = c + (d - c) * fx
    return top + (bottom - top) * fy


@numba.njit(inline="always")
def _predict_run(ref, y, xs, xe, ix, fx, iy, fy, h, w, buf):
    """``buf[xs:xe]`` = the bilinear prediction of row ``y``'s pixels ``xs..xe-1``, which share one vector.

    The same float32 operations as :func:`_bilinear`, with two exact shortcuts: a whole-pixel vector
    (``fx = fy = 0``) predicts the clamped reference sample itself (``a + (b - a) * 0 = a``), and a run
    whose four neighbours are all inside the frame reads two reference rows without clamping.
    """
    ya = y + iy
    inside = ya >= 0 and ya + 1 < h and xs + ix >= 0 and xe + ix < w
    if fx == 0 and fy == 0:
        if inside:
            row = ref[ya]
            for x in range(xs, xe):
                buf[x] = np.float32(row[x + ix])
        else:
            yc = min(max(ya, 0), h - 1)
            for x in range(xs, xe):
                buf[x] = np.float32(ref[yc, min(max(x + ix, 0), w - 1)])
    elif inside:
        r0, r1 = ref[ya], ref[ya + 1]
        for x in range(xs, xe):
            xa = x + ix
            a = np.float32(r0[xa])
            b = np.float32(r0[xa + 1])
            c = np.float32(r1[xa])
            d = np.float32(r1[xa + 1])
            top = a + (b - a) * fx
            bottom = c + (d - c) * fx
            buf[x] = top + (bottom - top) * fy
    else:
        for x in range(xs, xe):
            buf[x] = _bilinear(ref, x, y, ix, fx, iy, fy, h, w)


@jit
def warp_residual_nb(cur, past, future, ix, fx, iy, fy, owner, none, mode):
    """Row by row: the runs of pixels with the same owner entries (one vector each, ~6 pixels on the
    phone clip) are predicted together (:func:`_predict_run`), then the row's residual in one loop."""
    h, w = cur.shape
    out = np.empty((h, w), dtype=np.uint8)
    half = np.float32(0.5)  # x * 0.5 == x / 2 exactly
    lo, hi, mid = np.float32(0.0), np.float32(255.0), np.float32(128.0)
    own0, own1 = owner[0], owner[1]
    pred = np.empty(w, dtype=np.float32)
    other = np.empty(w, dtype=np.float32)
    for y in range(h):
        base = y * w
        x = 0
        while x < w:
            e0, e1 = own0[base + x], own1[base + x]
            xe = x + 1
            if mode == 0:
                while xe < w and own0[base + xe] == e0:
                    xe += 1
                _predict_run(past, y, x, xe, ix[e0], fx[e0], iy[e0], fy[e0], h, w, pred)
            elif mode == 1:
                while xe < w and own1[base + xe] == e1:
                    xe += 1
                _predict_run(future, y, x, xe, ix[e1], fx[e1], iy[e1], fy[e1], h, w, pred)
            else:
                while xe < w and own0[base + xe] == e0 and own1[base + xe] == e1:
                    xe += 1
                if e1 != none:
                    _predict_run(future, y, x, xe, ix[e1], fx[e1], iy[e1], fy[e1], h, w, pred)
                    if e0 != none:
                        _predict_run(past, y, x, xe, ix[e0], fx[e0], iy[e0], fy[e0], h, w, other)
                        for k in range(x, xe):
                            pred[k] = (other[k] + pred[k]) * half
                else:
                    _predict_run(past, y, x, xe, ix[e0], fx[e0], iy[e0], fy[e0], h, w, pred)
            x = xe
        row, dst = cur[y], out[y]
        for k in range(w):
            v = np.rint(np.float32(row[k]) - pred[k]) + mid
            dst[k] = np.uint8(min(max(v, lo), hi))
    return out


@jit
def saliency_blocks_nb(
    residual, res_scale, tab0, own0, tab1, own1, lists, w_mv, w_res, w_sum, mode, mask, patch, merge
):
    h, w = residual.shape
    ph, pw = h // patch, w // patch
    one, zero, mid = np.float32(1.0), np.float32(0.0), np.float32(128.0)
    r_of = np.empty(256, dtype=np.float32)  # the normalised residual of every uint8 value
    for v in range(256):
        r_of[v] = min(max(abs(np.float32(v) - mid) / res_scale, zero), one)
    masked = mask.shape[0] > 0
    patches = np.zeros((ph, pw), dtype=np.float64)
    for py in range(ph):
        for y in range(py * patch, (py + 1) * patch):
            for px in range(pw):
                acc = 0.0
                for x in range(px * patch, (px + 1) * patch):
                    r = r_of[residual[y, x]]
                    if mode == 0:
                        s = r
                    else:
                        m = zero
                        if mode == 2:
                            p = y * w + x
                            m = tab0[own0[p]]
                            if lists == 2:
                                m = max(m, tab1[own1[p]])
                        s = w_mv * m
                        s = s + w_res * r
                        s = s / w_sum
                        s = min(max(s, zero), one)
                    if masked:
                        s = s * mask[y, x]
                    acc += np.float64(s)
                patches[py, px] += acc
    bh, bw = ph // merge, pw // merge
    blocks = np.zeros((bh, bw), dtype=np.float64)
    for by in range(bh):
        for bx in range(bw):
            acc = 0.0
            for dy in range(merge):
                for dx in range(merge):
                    acc += patches[by * merge + dy, bx * merge + dx]
            blocks[by, bx] = acc
    return blocks


@jit
def _c_div(a, b):
    """Integer division truncating toward zero (C semantics)."""
    q = abs(a) // b
    return -q if a < 0 else q


@jit
def motion_cells_nb(w, h, src_x, src_y, dst_x, dst_y, source, gh, gw):
    n = w.shape[0]
    x0 = np.empty(n, dtype=np.int64)
    y0 = np.empty(n, dtype=np.int64)
    nx = np.empty(n, dtype=np.int64)
    ny = np.empty(n, dtype=np.int64)
    dx = np.zeros(n + 1, dtype=np.int32)
    dy = np.zeros(n + 1, dtype=np.int32)
    bits = 0
    empty = False
    for i in range(n):
        wi, hi = np.int64(w[i]), np.int64(h[i])
        nx[i], ny[i] = 2 * (wi // 8), 2 * (hi // 8)
        x0[i] = _c_div(np.int64(dst_x[i]), 4) - wi // 8
        y0[i] = _c_div(np.int64(dst_y[i]), 4) - hi // 8
        dx[i] = np.int64(src_x[i]) - np.int64(dst_x[i])
        dy[i] = np.int64(src_y[i]) - np.int64(dst_y[i])
        bits |= x0[i] | y0[i] | nx[i] | ny[i]
        if nx[i] <= 0 or ny[i] <= 0:
            empty = True
    unit = 1
    if n > 0 and not empty:
        unit = 4 if not bits & 3 else 2 if not bits & 1 else 1
    ch, cw = -(-gh // unit), -(-gw // unit)
    winner = np.full((2, ch * cw), n, dtype=np.int64)
    has_l1 = False
    for i in range(n):
        ax, ay, bx, by = x0[i] // unit, y0[i] // unit, nx[i] // unit, ny[i] // unit
        cx0, cy0 = max(ax, 0), max(ay, 0)
        cx1, cy1 = min(ax + bx, cw), min(ay + by, ch)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        lst = 1 if source[i] > 0 else 0
        if lst:
            has_l1 = True
        for yy in range(cy0, cy1):
            row = yy * cw
            for xx in range(cx0, cx1):
                winner[lst, row + xx] = i
    return winner, dx, dy, unit, ch, cw, has_l1


@jit
def owner_map_nb(winner, flat, cell_pixels, m, lists):
    p = flat.shape[0]
    owner = np.empty((2, p), dtype=np.int64)
    pixels = np.zeros((2, m), dtype=np.int64)
    for lst in range(lists):
        for q in range(p):
            owner[lst, q] = winner[lst, flat[q]]
        for c in range(winner.shape[1]):
            pixels[lst, winner[lst, c]] += cell_pixels[c]
    if lists == 1:
        for q in range(p):
            owner[1, q] = m - 1
        pixels[1, m - 1] = p
    return owner, pixels


@jit
def _weighted_select(values, counts, rank):
    """The value of 0-based ``rank`` in the multiset (``counts[i]`` copies of ``values[i]``): a
    three-way quickselect on copies, O(m) expected."""
    vals = values.copy()
    cnts = counts.copy()
    lo, hi = 0, vals.shape[0]
    while True:
        pivot = vals[(lo + hi) // 2]
        # three-way partition of [lo, hi): < pivot | == pivot | > pivot
        lt, i, gt = lo, lo, hi
        below = 0
        equal = 0
        while i < gt:
            v = vals[i]
            if v < pivot:
                vals[i], vals[lt] = vals[lt], v
                c = cnts[i]
                cnts[i], cnts[lt] = cnts[lt], c
                below += c
                lt += 1
                i += 1
            elif v > pivot:
                gt -= 1
                vals[i], vals[gt] = vals[gt], v
                c = cnts[i]
                cnts[i], cnts[gt] = cnts[gt], c
            else:
                equal += cnts[i]
                i += 1
        if rank < below:
            hi = lt
        elif rank < below + equal or gt >= hi:
            return pivot
        else:
            rank -= below + equal
            lo = gt


@jit
def weighted_order_stats_nb(values, counts, ranks):
    out = np.empty(ranks.shape[0], dtype=values.dtype)
    for k in range(ranks.shape[0]):
        out[k] = _weighted_select(values, counts, ranks[k])
    return out


@jit
def residual_scale_nb(residual, pct, floor):
    hist = np.zeros(256, dtype=np.int64)
    flat = residual.ravel()
    for i in range(flat.shape[0]):
        hist[flat[i]] += 1
    # counts of |v - 128| = 0..128, then the float32 percentile interpolation of weighted_percentile
    counts = np.zeros(129, dtype=np.int64)
    for x in range(128):
        counts[x] += hist[128 + x]
    for x in range(1, 129):
        counts[x] += hist[128 - x]
    n = flat.shape[0]
    p = 0.0
    if n > 0:
        pos = (n - 1) * pct / 100.0
        lo = int(pos)
        hi = min(lo + 1, n - 1)
        a = np.float32(_rank_level(counts, lo))
        b = np.float32(_rank_level(counts, hi))
        p = np.float64(a + (b - a) * np.float32(pos - lo))
    return hist, np.float32(max(p, floor))


@jit
def _rank_level(counts, rank):
    acc = 0
    for level in range(counts.shape[0]):
        acc += counts[level]
        if acc > rank:
            return level
    return counts.shape[0] - 1


@jit
def magnitude_table_nb(vx, vy, counts, unit_div, median, pct):
    m = vx.shape[0]
    x = np.empty(m, dtype=np.float32)
    y = np.empty(m, dtype=np.float32)
    for i in range(m):
        x[i] = vx[i] / unit_div
        y[i] = vy[i] / unit_div
    n = 0
    for i in range(m):
        n += counts[i]
    if median:
        ranks = np.array([(n - 1) // 2, n // 2], dtype=np.int64)
        for v in (x, y):
            mid = weighted_order_stats_nb(v, counts, ranks)
            med = mid[0] if n % 2 else (mid[0] + mid[1]) / np.float32(2.0)
            for i in range(m):
                v[i] = v[i] - med
    mag = np.empty(m, dtype=np.float32)
    for i in range(m):
        mag[i] = np.sqrt(x[i] * x[i] + y[i] * y[i])
    if n == 0:
        return mag, 0.0
    pos = (n - 1) * pct / 100.0
    lo = int(pos)
    ab = weighted_order_stats_nb(mag, counts, np.array([lo, min(lo + 1, n - 1)], dtype=np.int64))
    p = ab[0] + (ab[1] - ab[0]) * np.float32(pos - lo)
    return mag, np.float64(p)


@jit
def quality_sums_nb(luma, thumb, g_min, rb_max):
    s1 = 0
    s2 = 0
    for yy in range(luma.shape[0]):
        for xx in range(luma.shape[1]):
            v = np.int64(luma[yy, xx])
            s1 += v
            s2 += v * v
    green = 0
    for yy in range(thumb.shape[0]):
        for xx in range(thumb.shape[1]):
            if thumb[yy, xx, 1] > g_min and thumb[yy, xx, 0] < rb_max and thumb[yy, xx, 2] < rb_max:
                green += 1
    return s1, s2, green


@jit
def thumbnail_nb(y_buf, u_buf, v_buf, y_idx, u_idx, v_idx, h, w, full, k_y, k_c, c_r, c_gb, c_gr, c_b):
    out = np.empty((h, w, 3), dtype=np.uint8)
    zero, top, half = np.float32(0.0), np.float32(255.0), np.float32(0.5)
    for p in range(h * w):
        y = np.float32(y_buf[y_idx[p]])
        cb = np.float32(u_buf[u_idx[p]]) - np.float32(128.0)
        cr = np.float32(v_buf[v_idx[p]]) - np.float32(128.0)
        if not full:
            y = (y - np.float32(16.0)) * k_y
            cb = cb * k_c
            cr = cr * k_c
        r = y + c_r * cr
        g = y - c_gb * cb
        g = g - c_gr * cr
        b = y + c_b * cb
        out[p // w, p % w, 0] = np.uint8(min(max(r + half, zero), top))
        out[p // w, p % w, 1] = np.uint8(min(max(g + half, zero), top))
        out[p // w, p % w, 2] = np.uint8(min(max(b + half, zero), top))
    return out


@jit
def block_mean2_nb(rows, width):
    h, w = rows.shape[0] // 2, width // 2
    out = np.empty((h, w), dtype=np.uint8)
    for y in range(h):
        r0, r1, dst = rows[2 * y], rows[2 * y + 1], out[y]
        for x in range(w):
            s = (
                np.uint16(r0[2 * x])
                + np.uint16(r0[2 * x + 1])
                + np.uint16(r1[2 * x])
                + np.uint16(r1[2 * x + 1])
            )
            dst[x] = np.uint8((s + 2) >> 2)
    return out


@jit
def pick_blocks_nb(order_frame, windows, need):
    n, m = order_frame.shape[0], windows.shape[0]
    free = np.ones(n, dtype=np.bool_)
    ranks = np.empty(min(n, m * need), dtype=np.int64)
    stratum = np.empty(ranks.shape[0], dtype=np.int64)
    count = 0
    for k in range(m):
        left = need
        for i in range(windows.shape[1]):
            if left <= 0:
                break
            a, b = windows[k, i, 0], windows[k, i, 1]
            for r in range(n):
                if free[r] and a <= order_frame[r] < b:
                    free[r] = False
                    ranks[count] = r
                    stratum[count] = k
                    count += 1
                    left -= 1
                    if left == 0:
                        break
    return ranks[:count], stratum[:count]
