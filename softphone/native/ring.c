/* softphone/ringbuffer.py's RingBuffer in C: the same decisions, byte for byte.
 *
 * Read the Python modules' docstrings (ringbuffer.py, and ringtrim.py for the trims) for
 * why the ring primes, pads, trims out of pauses and splices; these files only explain
 * what is particular to C. Every integer step mirrors the Python one (`even_down` is
 * Python's `x - x % 2`, also for negatives), and the few floating-point steps are written
 * so they round exactly as Python's do: tests/phone/test_ringbuffer.py runs the same
 * tests against both and compares them on a long random session, output byte for output
 * byte.
 *
 * This file keeps the API, priming and the plain reads and writes; ring_trim.c the
 * standing-queue trims and splices (ringtrim.py's part); ring_internal.h the ring's
 * struct and the helpers both use.
 *
 * One mutex guards each ring: the device thread and pjsua2's media thread both call in.
 * Nothing is allocated after sb_ring_new: the scratch the pause check, the splice search
 * and the cut need is sized from the config there.
 */
#define _POSIX_C_SOURCE 200809L /* as ring_trim.c: both see the same ring_internal.h */

#include "ring_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ---- Python's arithmetic ------------------------------------------------------------ */

/* Python's `int(per_ms * ms) // 2 * 2`: int() truncates, then down to whole samples. */
static int64_t ms_to_bytes(double per_ms, int32_t ms) { return even_down((int64_t)(per_ms * ms)); }

/* ---- Ring memory (lock held) -------------------------------------------------------- */

static int64_t fill_of(const sb_ring *r) { return r->write - r->read; }

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

/* ---- Priming ------------------------------------------------------------------------ */

/* RingBuffer._prime: before anything was heard, start from the freshest `keep` bytes;
 * once audio has flowed the backlog is late speech and stays. Returns the fill left. */
static int64_t prime(sb_ring *r, int64_t fill, int64_t keep)
{
    int64_t excess = r->heard ? 0 : fill - keep;
    if (excess > 0) {
        excess = even_down(excess);
        ring_cut(r, 0, excess, SB_TRIM_START);
        fill -= excess;
    }
    if (!r->heard)
        r->fast_reads = 2 * r->start_window;
    r->primed = r->heard = 1;
    r->reads_in_window = 0;
    r->min_standing = r->capacity;
    return fill;
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
    r->start_window = max64(1, r->window / 5);
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
    r->reads_in_window = r->fast_reads = 0;
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
    ring_track_standing_queue(r, fill, r->frame_bytes); /* the frame about to go is not standing */
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
        ring_track_standing_queue(r, fill, r->frame_bytes - downstream);
        fill = fill_of(r);
        low = r->target_bytes - (fill + downstream - r->frame_bytes);
    } else {
        ring_track_standing_queue(r, fill, 0); /* blind: the frame that just came stands too */
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
        ring_log_trim(r, pad, 0, 0.0, SB_TRIM_PAD);
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
        ring_cut(r, 0, excess, SB_TRIM_STALL);
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
