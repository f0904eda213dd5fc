/* softphone/ringbuffer.py's RingBuffer in C: the same decisions, byte for byte.
 *
 * Read the Python module's docstring for why the ring primes, pads, trims out of pauses
 * and splices; this file only explains what is particular to C. Every integer step
 * mirrors the Python one (`even_down` is Python's `x - x % 2`, also for negatives), and
 * the few floating-point steps are written so they round exactly as Python's do:
 * tests/phone/test_ringbuffer.py runs the same tests against both and compares them
 * on a long random session, output byte for output byte.
 *
 * One mutex guards each ring: the device thread and pjsua2's media thread both call in.
 * Nothing is allocated after sb_ring_new: the scratch the pause check, the splice search
 * and the cut need is sized from the config there.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */

#include "sbaudio.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct sb_ring {
    pthread_mutex_t lock;

    /* Derived from the config once, as RingBuffer.__init__ does (bytes unless said). */
    int64_t frame_bytes, start_bytes, target_bytes, capacity;
    int64_t window, quiet_peak, pause, max_defer, hold;
    int64_t xfade, lag_min, lag_max, search; /* samples */

    uint8_t *buf; /* capacity bytes; zeroed, like the Python bytearray */

    /* Scratch, so the hot paths never allocate. */
    int16_t *tmp;    /* capacity bytes: a peek (peak, cut's samples, the head it moves) */
    int16_t *x;      /* the splice search's samples ... */
    int64_t *sq;     /* ... their prefix sums of squares (one more entry) */
    double *scores;  /* one per lag, indexed by lag */
    int16_t *joined; /* the crossfade, xfade samples */

    /* State, as in Python. */
    int64_t read, write; /* absolute counters; index = counter % capacity */
    int primed, heard;
    int64_t reads_in_window, min_standing;
    int64_t quiet_since; /* read counter when the queue went all quiet; -1: None */
    int64_t pending, due_at, next_splice;

    sb_ring_counters n; /* fill_bytes is filled in on the way out */
    sb_trim trims[SB_TRIMS_KEPT]; /* a circular log: the deque(maxlen=32) */
    int trims_next, trims_count;
};

/* ---- Python's arithmetic ------------------------------------------------------------ */

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Python's `x - x % 2`: down to even, towards minus infinity also for negative x. */
static int64_t even_down(int64_t x) { return x - (x & 1); }

/* Python's `int(per_ms * ms) // 2 * 2`: int() truncates, then down to whole samples. */
static int64_t ms_to_bytes(double per_ms, int32_t ms) { return even_down((int64_t)(per_ms * ms)); }

/* Python's round() on a float: to nearest, ties to even (the default rounding mode). */
static int64_t py_round(double v) { return (int64_t)nearbyint(v); }

/* time.monotonic(): CPython takes CLOCK_MONOTONIC in nanoseconds, then divides by 1e9. */
static double monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec) / 1e9;
}

/* ---- Ring memory (lock held) -------------------------------------------------------- */

static int64_t fill_of(const sb_ring *r) { return r->write - r->read; }

/* Copy n queued bytes from `offset` after the oldest to dst (the ring may wrap). */
static void peek(const sb_ring *r, int64_t offset, int64_t n, void *dst)
{
    if (n <= 0)
        return;
    int64_t start = (r->read + offset) % r->capacity;
    int64_t first = min64(n, r->capacity - start);
    memcpy(dst, r->buf + start, (size_t)first);
    if (first < n)
        memcpy((uint8_t *)dst + first, r->buf, (size_t)(n - first));
}

/* Overwrite n queued bytes from `offset` after the oldest with src. */
static void poke(sb_ring *r, int64_t offset, const void *src, int64_t n)
{
    if (n <= 0)
        return;
    int64_t start = (r->read + offset) % r->capacity;
    int64_t first = min64(n, r->capacity - start);
    memcpy(r->buf + start, src, (size_t)first);
    if (first < n)
        memcpy(r->buf, (const uint8_t *)src + first, (size_t)(n - first));
}

static void copy_out(sb_ring *r, uint8_t *dst, int64_t n)
{
    peek(r, 0, n, dst);
    r->read += n;
}

static void zero(uint8_t *dst, int64_t n)
{
    if (n > 0)
        memset(dst, 0, (size_t)n);
}

/* The largest |sample| of every `step`th of `count` samples (0 for none), as an int:
 * |-32768| does not fit an int16. */
static int32_t peak_of(const int16_t *s, int64_t count, int64_t step)
{
    int32_t peak = 0;
    for (int64_t i = 0; i < count; i += step) {
        int32_t v = s[i] < 0 ? -(int32_t)s[i] : s[i];
        if (v > peak)
            peak = v;
    }
    return peak;
}

/* RingBuffer._peak: of n queued bytes (even) from `offset` after the oldest. */
static int32_t queue_peak(sb_ring *r, int64_t offset, int64_t n, int64_t step)
{
    peek(r, offset, n, r->tmp);
    return peak_of(r->tmp, n / 2, step);
}

/* ---- Trims -------------------------------------------------------------------------- */

static void log_trim(sb_ring *r, int64_t bytes, int32_t peak, double rms, int kind)
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
static void cut(sb_ring *r, int64_t offset, int64_t n, int kind)
{
    int64_t count = n / 2, sumsq = 0;
    peek(r, offset, n, r->tmp);
    for (int64_t i = 0; i < count; i++)
        sumsq += (int64_t)r->tmp[i] * r->tmp[i];
    /* Python divides the exact integers; the same double while sumsq < 2^53, i.e. for
     * any cut under 16 MB. */
    double rms = count ? sqrt((double)sumsq / (double)count) : 0.0;
    log_trim(r, n, peak_of(r->tmp, count, 1), rms, kind);
    peek(r, 0, offset, r->tmp);
    r->read += n;
    poke(r, 0, r->tmp, offset);
    r->n.trimmed_bytes += n;
}

/* ---- Priming ------------------------------------------------------------------------ */

/* RingBuffer._prime: before anything was heard, start from the freshest `keep` bytes;
 * once audio has flowed the backlog is late speech and stays. Returns the fill left. */
static int64_t prime(sb_ring *r, int64_t fill, int64_t keep)
{
    int64_t excess = r->heard ? 0 : fill - keep;
    if (excess > 0) {
        excess = even_down(excess);
        cut(r, 0, excess, SB_TRIM_START);
        fill -= excess;
    }
    r->primed = r->heard = 1;
    r->reads_in_window = 0;
    r->min_standing = r->capacity;
    return fill;
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
    cut(r, 2 * q, 2 * lag, SB_TRIM_SPLICE);
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
        cut(r, offset, n, SB_TRIM_PAUSE);
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
static void track_standing_queue(sb_ring *r, int64_t fill, int64_t allow)
{
    r->min_standing = min64(r->min_standing, fill - allow);
    if (++r->reads_in_window >= r->window) {
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

/* ---- The API ------------------------------------------------------------------------ */

static void *zalloc(int64_t count, size_t size)
{
    return calloc((size_t)max64(1, count), size);
}

static void free_memory(sb_ring *r)
{
    free(r->buf);
    free(r->tmp);
    free(r->x);
    free(r->sq);
    free(r->scores);
    free(r->joined);
    free(r);
}

sb_ring *sb_ring_new(const sb_ring_config *cfg)
{
    /* Python takes nonsense too (it fails later, or cuts more than is queued); C must not
     * be steered outside its buffers, so it refuses it here. */
    if (!cfg || cfg->frame_bytes <= 0 || cfg->frame_ms <= 0 || cfg->start_ms < 0 ||
        cfg->target_ms < 0 || cfg->pause_ms < 0 || cfg->defer_ms < 0 || cfg->hold_ms < 0)
        return NULL;
    double per_ms = (double)cfg->frame_bytes / cfg->frame_ms;
    double per_sample_ms = per_ms / 2.0;
    int64_t capacity = ms_to_bytes(per_ms, cfg->capacity_ms);
    if (capacity <= 0) /* Python would fail on the first write: fail here */
        return NULL;
    sb_ring *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->frame_bytes = cfg->frame_bytes;
    r->start_bytes = ms_to_bytes(per_ms, cfg->start_ms);
    r->target_bytes = ms_to_bytes(per_ms, cfg->target_ms);
    r->capacity = capacity;
    r->window = cfg->window_reads;
    r->quiet_peak = cfg->quiet_peak;
    r->pause = ms_to_bytes(per_ms, cfg->pause_ms);
    r->max_defer = (int64_t)(per_ms * cfg->defer_ms); /* not aligned, as in Python */
    r->hold = ms_to_bytes(per_ms, cfg->hold_ms);
    r->xfade = max64(8, py_round(per_sample_ms * 5));
    r->lag_min = max64(2, py_round(per_sample_ms * 2.5));
    r->lag_max = max64(r->lag_min, py_round(per_sample_ms * 12.5));
    r->search = py_round(per_sample_ms * 40);
    /* A splice reads last_q + hi + w samples: at most search + lag_max + xfade, and at
     * most half the fill. */
    int64_t x_len = min64(r->search + r->lag_max + r->xfade, capacity / 2);
    r->buf = zalloc(capacity, 1);
    r->tmp = zalloc(capacity / 2, sizeof *r->tmp);
    r->x = zalloc(x_len, sizeof *r->x);
    r->sq = zalloc(x_len + 1, sizeof *r->sq);
    r->scores = zalloc(r->lag_max + 1, sizeof *r->scores);
    r->joined = zalloc(r->xfade, sizeof *r->joined);
    if (!r->buf || !r->tmp || !r->x || !r->sq || !r->scores || !r->joined ||
        pthread_mutex_init(&r->lock, NULL) != 0) {
        free_memory(r);
        return NULL;
    }
    r->min_standing = capacity;
    r->quiet_since = -1;
    return r;
}

void sb_ring_free(sb_ring *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->lock);
    free_memory(r);
}

/* Forget everything queued; the counters and the trims log stay, as in Python. */
void sb_ring_reset(sb_ring *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->read = r->write = 0;
    r->primed = r->heard = 0;
    r->pending = r->due_at = r->next_splice = 0;
    r->quiet_since = -1;
    r->reads_in_window = 0;
    r->min_standing = r->capacity;
    pthread_mutex_unlock(&r->lock);
}

void sb_ring_write(sb_ring *r, const void *src, int64_t n)
{
    if (!r || n <= 0)
        return;
    const uint8_t *p = src;
    pthread_mutex_lock(&r->lock);
    if (n > r->capacity) { /* only the freshest capacity bytes can be kept */
        int64_t skip = n - r->capacity;
        p += skip;
        r->n.dropped_bytes += skip;
        n = r->capacity;
    }
    int64_t overflow = fill_of(r) + n - r->capacity;
    if (overflow > 0) { /* drop the oldest */
        r->read += overflow;
        r->n.dropped_bytes += overflow;
    }
    poke(r, fill_of(r), p, n); /* read + fill: at the write index */
    r->write += n;
    r->n.frames_in++;
    pthread_mutex_unlock(&r->lock);
}

static int read_locked(sb_ring *r, uint8_t *dst, int64_t n)
{
    r->n.frames_out++;
    int64_t fill = fill_of(r);
    if (!r->primed) {
        int64_t keep = max64(r->start_bytes, n);
        if (fill < keep) {
            zero(dst, n);
            return 0;
        }
        fill = prime(r, fill, keep);
    }
    if (fill < n) {
        /* The producer is late: hand out what is here, pad the rest; only an empty ring
         * primes again. */
        r->n.underruns++;
        int64_t have = even_down(fill);
        if (have <= 0) {
            r->primed = 0;
            zero(dst, n);
            return 0;
        }
        copy_out(r, dst, have);
        zero(dst + have, n - have);
        return 1;
    }
    track_standing_queue(r, fill, r->frame_bytes); /* the frame about to go is not standing */
    copy_out(r, dst, n);
    return 1;
}

/* n < 0 does nothing (Python would hand ctypes.memset a negative size). */
int sb_ring_read(sb_ring *r, void *dst, int64_t n)
{
    if (!r || n < 0)
        return 0;
    pthread_mutex_lock(&r->lock);
    int audio = read_locked(r, dst, n);
    pthread_mutex_unlock(&r->lock);
    return audio;
}

static int64_t drain_locked(sb_ring *r, uint8_t *dst, int64_t most, int64_t downstream)
{
    int64_t fill = fill_of(r), low = 0; /* low: what the consumer's queue lacks */
    if (!r->primed) {
        fill = prime(r, fill, r->start_bytes);
    } else if (downstream >= 0) {
        track_standing_queue(r, fill, r->frame_bytes - downstream);
        fill = fill_of(r);
        low = r->target_bytes - (fill + downstream - r->frame_bytes);
    } else {
        track_standing_queue(r, fill, 0); /* blind: the frame that just came stands too */
        fill = fill_of(r);
    }
    int64_t n = even_down(min64(most, fill));
    if (n <= 0)
        return 0;
    r->n.frames_out++;
    int64_t pad = low > 0 ? even_down(min64(low + 2 * r->lag_min, most - n)) : 0;
    if (pad > 0 && queue_peak(r, 0, n, 4) > r->quiet_peak)
        pad = 0; /* only a quiet frame is lengthened */
    copy_out(r, dst, n);
    if (pad > 0) {
        zero(dst + n, pad);
        r->n.padded_bytes += pad;
        log_trim(r, pad, 0, 0.0, SB_TRIM_PAD);
    }
    return n + pad;
}

int64_t sb_ring_drain(sb_ring *r, void *dst, int64_t most, int64_t downstream)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&r->lock);
    int64_t n = drain_locked(r, dst, most, downstream);
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* keep < 0 keeps nothing (Python would cut more than is queued). */
void sb_ring_keep_newest(sb_ring *r, int64_t keep)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    int64_t excess = even_down(fill_of(r) - max64(keep, 0));
    if (excess > 0)
        cut(r, 0, excess, SB_TRIM_STALL);
    pthread_mutex_unlock(&r->lock);
}

int64_t sb_ring_fill(sb_ring *r)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&r->lock);
    int64_t fill = fill_of(r);
    pthread_mutex_unlock(&r->lock);
    return fill;
}

void sb_ring_counters_get(sb_ring *r, sb_ring_counters *out)
{
    if (!r || !out)
        return;
    pthread_mutex_lock(&r->lock);
    *out = r->n;
    out->fill_bytes = fill_of(r);
    pthread_mutex_unlock(&r->lock);
}

int sb_ring_trims(sb_ring *r, sb_trim *out, int max)
{
    if (!r || !out || max <= 0)
        return 0;
    pthread_mutex_lock(&r->lock);
    int count = r->trims_count < max ? r->trims_count : max;
    for (int i = 0; i < count; i++) { /* the latest `count`, oldest first */
        int at = (r->trims_next - count + i + SB_TRIMS_KEPT) % SB_TRIMS_KEPT;
        out[i] = r->trims[at];
    }
    pthread_mutex_unlock(&r->lock);
    return count;
}

void sb_ring_sizes_get(sb_ring *r, sb_ring_sizes *out)
{
    if (!r || !out)
        return;
    out->start_bytes = r->start_bytes; /* constant after sb_ring_new: no lock needed */
    out->target_bytes = r->target_bytes;
    out->capacity = r->capacity;
}
