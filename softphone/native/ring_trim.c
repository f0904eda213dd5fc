/* RingBuffer's standing-queue trims in C (softphone/ringtrim.py), decision for decision.
 *
 * Read ringtrim.py's docstring for why a standing queue is cut out of a pause, or else
 * spliced where the audio joins best; this file only explains what is particular to C.
 * The arithmetic mirrors Python's as ring.c's opening comment says, and the same tests
 * cover it (tests/phone/test_ringbuffer.py). The scratch the pause check, the splice search
 * and the cut use was sized in sb_ring_new (ring.c): nothing here allocates.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "ring_internal.h"

#include <math.h>
#include <time.h>

/* time.monotonic(): CPython takes CLOCK_MONOTONIC in nanoseconds, then divides by 1e9. */
static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec) / 1e9;
}

/* ---- Trims -------------------------------------------------------------------------- */

void ring_log_trim(sb_ring *r, int64_t bytes, int32_t peak, double rms, int kind)
{
    sb_trim *t = &r->trims[r->trims_next];
    t->t = monotonic_s();
    t->bytes = bytes;
    t->peak = peak;
    t->rms = rms;
    t->kind = kind;
    r->trims_next = (r->trims_next + 1) % SB_TRIMS_KEPT;
    if (r->trims_count < SB_TRIMS_KEPT)
        r->trims_count++;
}

/* RingBuffer._cut: remove n queued bytes `offset` after the oldest (both even, offset +
 * n <= fill), the older audio moving up to close the gap, and log what went. n may be 0
 * (a one-byte excess at the start): Python logs that too. */
void ring_cut(sb_ring *r, int64_t offset, int64_t n, int kind)
{
    int64_t count = n / 2, sumsq = 0;
    peek(r, offset, n, r->tmp);
    for (int64_t i = 0; i < count; i++)
        sumsq += (int64_t)r->tmp[i] * r->tmp[i];
    /* Python divides the exact integers; the same double while sumsq < 2^53, i.e. for
     * any cut under 16 MB. */
    double rms = count ? sqrt((double)sumsq / (double)count) : 0.0;
    ring_log_trim(r, n, peak_of(r->tmp, count, 1), rms, kind);
    peek(r, 0, offset, r->tmp);
    r->read += n;
    poke(r, 0, r->tmp, offset);
    r->n.trimmed_bytes += n;
}

/* ---- Standing-queue trims (lock held) ----------------------------------------------- */

static void set_pending(sb_ring *r, int64_t excess)
{
    excess = max64(0, even_down(excess));
    if (excess && !r->pending)
        r->due_at = r->read;
    r->pending = excess;
    if (!excess)
        r->quiet_since = -1;
}

/* RingBuffer._pause_span: true with the span to cut from the middle of the queue when
 * every queued sample is quiet and has been for `pause` bytes of audio. */
static int pause_span(sb_ring *r, int64_t fill, int64_t want, int64_t *offset, int64_t *n)
{
    int64_t span = even_down(fill);
    if (span <= 0 || queue_peak(r, 0, span, 1) > r->quiet_peak) {
        r->quiet_since = -1;
        return 0;
    }
    if (r->quiet_since < 0)
        r->quiet_since = r->read;
    int64_t margin = 2 * r->lag_min; /* 2.5 ms of quiet kept on either side */
    want = even_down(min64(want, span - 2 * margin));
    if (r->read - r->quiet_since + span < r->pause || want <= 0)
        return 0;
    *offset = even_down((span - want) / 2); /* span - want >= 0: C's / is Python's // */
    *n = want;
    return 1;
}

/* The place among the first last_q + 1 samples (every step-th) where the stretch of
 * `len` samples after it holds the least energy; the first of equals, like min(). */
static int64_t quietest_place(const int64_t *sq, int64_t last_q, int64_t step, int64_t len)
{
    int64_t q = 0, least = sq[len] - sq[0];
    for (int64_t i = step; i <= last_q; i += step) {
        int64_t e = sq[i + len] - sq[i];
        if (e < least) {
            least = e;
            q = i;
        }
    }
    return q;
}

/* The longest lag in lo..hi whose `w` samples best continue the `w` at q: normalised
 * correlation, anything within 0.02 of the best counting as best. Python's float steps:
 * ea * eb is rounded once to a double (both are exact doubles, and IEEE multiplication
 * rounds the exact product as int-to-float does), and the integer dot is exact. */
static int64_t best_lag(sb_ring *r, int64_t q, int64_t lo, int64_t hi, int64_t w)
{
    const int16_t *a = r->x + q;
    int64_t ea = r->sq[q + w] - r->sq[q];
    if (ea <= 0)
        return hi; /* silence at q: any lag joins as well; the longest */
    double top = 0.0;
    for (int64_t lag = lo; lag <= hi; lag++) {
        const int16_t *b = a + lag;
        int64_t eb = r->sq[q + lag + w] - r->sq[q + lag], dot = 0;
        for (int64_t i = 0; i < w; i++)
            dot += (int64_t)a[i] * b[i];
        double s = eb > 0 ? (double)dot / sqrt((double)ea * (double)eb) : 0.0;
        r->scores[lag] = s;
        if (lag == lo || s > top)
            top = s;
    }
    int64_t best = lo;
    for (int64_t lag = lo; lag <= hi; lag++)
        if (r->scores[lag] >= top - 0.02)
            best = lag;
    return best;
}

/* RingBuffer._splice: remove one stretch of lag_min..lag_max samples (at most `want`
 * bytes) where it joins best, crossfading the `xfade` samples after it into the audio
 * before it. Returns the bytes removed (0 when less than the shortest splice is due). */
static int64_t splice(sb_ring *r, int64_t fill, int64_t want)
{
    const int64_t w = r->xfade, lo = r->lag_min;
    int64_t room = even_down(fill) / 2 - w; /* a splice at q needs samples to q + lag + w */
    int64_t hi = min64(min64(r->lag_max, want / 2), room);
    if (hi < lo)
        return 0;
    int64_t last_q = min64(r->search, room - hi);
    int64_t len = last_q + hi + w; /* <= fill / 2: the scratch holds it */
    peek(r, 0, 2 * len, r->x);
    r->sq[0] = 0;
    for (int64_t i = 0; i < len; i++)
        r->sq[i + 1] = r->sq[i] + (int64_t)r->x[i] * r->x[i];
    int64_t q = quietest_place(r->sq, last_q, max64(1, w / 4), hi + w);
    int64_t lag = best_lag(r, q, lo, hi, w);
    const int16_t *a = r->x + q, *b = r->x + q + lag;
    for (int64_t i = 0; i < w; i++) {
        /* Python: round(a + (b - a) * (i + 0.5) / w), every step in double. */
        double v = (double)a[i] + (double)(b[i] - a[i]) * ((double)i + 0.5) / (double)w;
        r->joined[i] = (int16_t)py_round(v);
    }
    poke(r, 2 * (q + lag), r->joined, 2 * w);
    ring_cut(r, 2 * q, 2 * lag, SB_TRIM_SPLICE);
    return 2 * lag;
}

/* Whether a due trim with no pause to take it from waits: for a pause, while the excess
 * is under the hold and has not waited `max_defer`; or for the splices' spacing, unless
 * the queue is still growing past twice the hold. */
static int splice_waits(const sb_ring *r, int64_t over)
{
    return (over <= r->hold && r->read - r->due_at <= r->max_defer) ||
           (r->read < r->next_splice && over <= 2 * r->hold);
}

static void trim_pending(sb_ring *r, int64_t fill, int64_t allow)
{
    /* Never below the target plus what is allowed, whatever the window said. */
    int64_t over = fill - allow - r->target_bytes;
    int64_t want = even_down(min64(r->pending, over));
    if (want <= 0) {
        set_pending(r, 0);
        return;
    }
    int64_t offset, n;
    if (pause_span(r, fill, want, &offset, &n)) {
        ring_cut(r, offset, n, SB_TRIM_PAUSE);
    } else if (splice_waits(r, over)) {
        return;
    } else {
        n = splice(r, fill, want);
        if (!n) {
            set_pending(r, 0);
            return;
        }
        r->n.splices++;
        r->next_splice = r->read + 4 * n; /* at most a fifth of what is heard */
    }
    r->min_standing = max64(0, r->min_standing - n);
    set_pending(r, r->pending - n);
}

/* RingBuffer._track_standing_queue: `allow` is what of the fill is not standing. */
void ring_track_standing_queue(sb_ring *r, int64_t fill, int64_t allow)
{
    r->min_standing = min64(r->min_standing, fill - allow);
    int64_t window = r->window;
    if (r->fast_reads > 0) {
        r->fast_reads--;
        window = r->start_window;
    }
    if (++r->reads_in_window >= window) {
        set_pending(r, r->min_standing - r->target_bytes);
        r->reads_in_window = 0;
        r->min_standing = r->capacity;
    }
    int64_t over = fill - allow - r->target_bytes;
    if (over > r->hold && over > r->pending)
        set_pending(r, over); /* far above the target: not worth a window's wait */
    if (r->pending)
        trim_pending(r, fill, allow);
}
