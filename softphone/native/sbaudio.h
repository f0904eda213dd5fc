/* The engine's native clock path: the headset port's work on pjsua2's media clock.
 *
 * Why native: the Python port (softphone/bridge.py) costs the engine about as much CPU as
 * pjsua2 itself, twice per 20 ms tick (SWIG director calls, ctypes, the ring's bookkeeping).
 * Here the bridge calls C for every frame and Python is only told of rare events (a stream
 * that failed). The ring keeps the behaviour of softphone/ringbuffer.py exactly: the same
 * tests run against both (tests/phone/test_ringbuffer.py).
 */
#ifndef SBAUDIO_H
#define SBAUDIO_H

#include <stddef.h>
#include <stdint.h>

/* ---- ring.c: softphone/ringbuffer.py's RingBuffer, byte for byte ---------------- */

typedef struct sb_ring sb_ring;

typedef struct sb_ring_config {
    int32_t frame_bytes, frame_ms, start_ms, target_ms, capacity_ms, window_reads,
        quiet_peak, pause_ms, defer_ms, hold_ms;
} sb_ring_config;

typedef struct sb_ring_counters {
    int64_t fill_bytes, underruns, dropped_bytes, trimmed_bytes, padded_bytes, splices,
        frames_in, frames_out;
} sb_ring_counters;

/* Trim kinds, in the order of RingBuffer.trims' names. */
enum { SB_TRIM_START, SB_TRIM_PAUSE, SB_TRIM_SPLICE, SB_TRIM_STALL, SB_TRIM_PAD };

typedef struct sb_trim {
    double t;    /* CLOCK_MONOTONIC seconds (Python's time.monotonic) */
    int64_t bytes;
    int32_t peak;
    int32_t kind;
    double rms;
} sb_trim;

#define SB_TRIMS_KEPT 32

sb_ring *sb_ring_new(const sb_ring_config *cfg);
void sb_ring_free(sb_ring *r);
void sb_ring_reset(sb_ring *r);
void sb_ring_write(sb_ring *r, const void *src, int64_t n);
int sb_ring_read(sb_ring *r, void *dst, int64_t n);                /* 1 audio, 0 silence */
int64_t sb_ring_drain(sb_ring *r, void *dst, int64_t most, int64_t downstream); /* <0: unknown */
void sb_ring_keep_newest(sb_ring *r, int64_t keep);
int64_t sb_ring_fill(sb_ring *r);
void sb_ring_counters_get(sb_ring *r, sb_ring_counters *out);
int sb_ring_trims(sb_ring *r, sb_trim *out, int max);             /* oldest first */

/* The byte sizes the config came to (RingBuffer's start_bytes, target_bytes, capacity),
 * so callers need not repeat the rounding. Constant for the ring's life. */
typedef struct sb_ring_sizes {
    int64_t start_bytes, target_bytes, capacity;
} sb_ring_sizes;

void sb_ring_sizes_get(sb_ring *r, sb_ring_sizes *out);

/* ---- port.c: the conference port, and the PulseAudio streams it moves -------------- */

typedef struct sb_port sb_port;

/* Called on the media clock's thread, no lock held, when a stream fails (once per failure;
 * the reason is the context's error, read by the callee): dir 0 capture, 1 playback. */
typedef void (*sb_fault_cb)(int dir);

/* Open the port and add it to pjsua's conference bridge. `pjsua_path`: the loaded pjsua2
 * extension, whose pjmedia/pjsua symbols are used. Returns NULL with `err` filled. */
sb_port *sb_port_open(const char *pjsua_path, sb_ring *mic, sb_ring *speaker,
                      int32_t clock_rate, int32_t frame_ms, sb_fault_cb on_fault,
                      char *err, int32_t errlen);
int32_t sb_port_slot(sb_port *p);
/* Remove it from the bridge; its memory goes when the bridge lets go (on_destroy). */
void sb_port_close(sb_port *p);
/* Attach (or with stream NULL detach) a PulseAudio stream. Never call with the mainloop's
 * lock held: a tick holds the port's lock while it takes the mainloop's. */
int32_t sb_port_attach(sb_port *p, int32_t dir, void *mainloop, void *stream, int32_t over,
                       int32_t stalled_ticks);

#endif
