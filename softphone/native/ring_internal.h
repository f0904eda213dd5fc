/* What ring.c and ring_trim.c share: the ring itself and the small helpers both use.
 *
 * Private to softphone/native: sbaudio.h is the API, and keeps the ring opaque. The helpers
 * here are static inline; the few functions one file calls in the other are hidden from
 * the library's exports. All of it runs with the ring's lock held.
 */
#ifndef SB_RING_INTERNAL_H
#define SB_RING_INTERNAL_H

#include "sbaudio.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* Shared between the ring's files, not exported from _sbaudio.so. */
#define SB_INTERNAL __attribute__((visibility("hidden")))

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
    int64_t start_window, fast_reads; /* the stream's first, shorter windows */
    int64_t quiet_since; /* read counter when the queue went all quiet; -1: None */
    int64_t pending, due_at, next_splice;

    sb_ring_counters n; /* fill_bytes is filled in on the way out */
    sb_trim trims[SB_TRIMS_KEPT]; /* a circular log: the deque(maxlen=32) */
    int trims_next, trims_count;
};

/* ---- Python's arithmetic ------------------------------------------------------------ */

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Python's `x - x % 2`: down to even, towards minus infinity also for negative x. */
static inline int64_t even_down(int64_t x) { return x - (x & 1); }

/* Python's round() on a float: to nearest, ties to even (the default rounding mode). */
static inline int64_t py_round(double v) { return (int64_t)nearbyint(v); }

/* ---- Ring memory (lock held) -------------------------------------------------------- */

/* Copy n queued bytes from `offset` after the oldest to dst (the ring may wrap). */
static inline void peek(const sb_ring *r, int64_t offset, int64_t n, void *dst)
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
static inline void poke(sb_ring *r, int64_t offset, const void *src, int64_t n)
{
    if (n <= 0)
        return;
    int64_t start = (r->read + offset) % r->capacity;
    int64_t first = min64(n, r->capacity - start);
    memcpy(r->buf + start, src, (size_t)first);
    if (first < n)
        memcpy(r->buf, (const uint8_t *)src + first, (size_t)(n - first));
}

/* The largest |sample| of every `step`th of `count` samples (0 for none), as an int:
 * |-32768| does not fit an int16. */
static inline int32_t peak_of(const int16_t *s, int64_t count, int64_t step)
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
static inline int32_t queue_peak(sb_ring *r, int64_t offset, int64_t n, int64_t step)
{
    peek(r, offset, n, r->tmp);
    return peak_of(r->tmp, n / 2, step);
}

/* ---- Trims, in ring_trim.c (lock held) ---------------------------------------------- */

/* Log a trim (or a pad, as ring.c's drain adds) in the ring's circular log. */
SB_INTERNAL void ring_log_trim(sb_ring *r, int64_t bytes, int32_t peak, double rms,
                               int kind);
/* RingBuffer._cut: remove n queued bytes `offset` after the oldest (priming and
 * keep_newest in ring.c cut too). */
SB_INTERNAL void ring_cut(sb_ring *r, int64_t offset, int64_t n, int kind);
/* RingBuffer._track_standing_queue: before a read or a drain; `allow` is what of the fill
 * is not standing. */
SB_INTERNAL void ring_track_standing_queue(sb_ring *r, int64_t fill, int64_t allow);

#endif
