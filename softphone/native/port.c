/* The headset's conference port in C, and the PulseAudio streams it moves on the tick.
 *
 * pjsua2's AudioMediaPort calls Python twice per 20 ms tick through SWIG directors; that
 * and the Python work behind it cost the engine as much CPU as pjsua2's own call. This port
 * is a plain pjmedia_port: the bridge's clock calls get_frame/put_frame here, which read
 * and write the rings (ring.c) and, when a PulseAudio stream is attached, pull the
 * microphone before the read and push the speaker after the write, exactly as
 * softphone/pulse_client.py's PulseStream does from Python. Python is called only when a
 * stream fails (`sb_fault_cb`).
 *
 * No pjproject headers are needed: the few pjmedia 2.15 types used are declared below, and
 * `sb_port_open` checks them against the library before the port is used
 * (`layout_matches`); pjmedia and pjsua are reached through the loaded pjsua2 extension,
 * libpulse through dlopen, so building needs only a C compiler.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "sbaudio.h"

/* ---- pjmedia 2.15's ABI: pjmedia/port.h, format.h, frame.h (the members used) ---- */

typedef struct { char *ptr; long slen; } pj_str;

typedef struct {
    uint32_t clock_rate, channel_count, frame_time_usec, bits_per_sample, avg_bps, max_bps;
} pjm_audio_detail;

typedef struct {
    uint32_t id;
    int type;        /* pjmedia_type: 1 audio */
    int detail_type; /* pjmedia_format_detail_type: 1 audio */
    union {
        pjm_audio_detail aud;
        uint32_t vid[6]; /* pjmedia_video_format_detail: size, fps, avg_bps, max_bps */
        char user[1];
    } det;
} pjm_format;

typedef struct {
    pj_str name;
    uint32_t signature;
    int dir;
    pjm_format fmt;
} pjm_port_info;

typedef struct {
    int type; /* pjmedia_frame_type: 1 audio */
    void *buf;
    size_t size;
    uint64_t timestamp;
    uint32_t bit_info;
} pjm_frame;

typedef struct pjm_port {
    pjm_port_info info;
    struct { void *pdata; long ldata; } port_data;
    void *grp_lock;
    void *(*get_clock_src)(struct pjm_port *, int);
    int (*put_frame)(struct pjm_port *, pjm_frame *);
    int (*get_frame)(struct pjm_port *, pjm_frame *);
    int (*on_destroy)(struct pjm_port *);
} pjm_port;

enum { PJM_AUDIO = 1, FRAME_AUDIO = 1 };
#define SIGNATURE 0x53424850u /* "SBHP" */
static char PORT_NAME[] = "switchboard-headset";

/* ---- libpulse: the calls on the tick (pulse/stream.h, thread-mainloop.h) ---- */

typedef struct {
    struct timeval timestamp;
    int synchronized_clocks;
    uint64_t sink_usec; /* the head of pa_timing_info, up to the field read */
} pa_timing_head;

typedef struct {
    void (*lock)(void *ml);
    void (*unlock)(void *ml);
    int (*get_state)(void *s);
    int (*peek)(void *s, const void **data, size_t *n);
    int (*drop)(void *s);
    size_t (*writable_size)(void *s);
    int (*write)(void *s, const void *data, size_t n, void *free_cb, int64_t off, int seek);
    int (*get_latency)(void *s, uint64_t *usec, int *negative);
    const pa_timing_head *(*get_timing_info)(void *s);
} pa_api;

enum { PA_STREAM_READY = 2, PA_SEEK_RELATIVE = 0 };

/* ---- the port ---- */

typedef struct {
    void *ml, *stream; /* NULL: nothing attached */
    sb_ring *ring;
    int32_t over, stalled_ticks, full_ticks;
    int broken;
} sb_io;

struct sb_port {
    pjm_port base; /* first: the bridge hands back a pjm_port pointer */
    sb_ring *mic, *speaker;
    int64_t frame_bytes, bytes_per_s, scratch_size;
    unsigned char *scratch;
    sb_io io[2];             /* 0 capture, 1 playback */
    pthread_mutex_t io_lock; /* attach/detach against the tick; taken before the mainloop's */
    sb_fault_cb on_fault;
    pa_api pa;
    int has_pa;
    void *pjsua_lib, *pulse_lib;
    int (*conf_remove_port)(int slot);
    int (*port_dec_ref)(pjm_port *port);
    int32_t slot;
};

/* These return nonzero when the stream failed: a call refused, or it is no longer ready. */
static int check_state(sb_port *p, sb_io *io) {
    return p->pa.get_state(io->stream) != PA_STREAM_READY;
}

/* Everything the microphone delivered so far into the mic ring; never waits. Pieces with
 * no data (a hole in the record stream) are dropped unread. Mainloop lock held. */
static int pull(sb_port *p, sb_io *io) {
    int fault = check_state(p, io);
    while (!fault) {
        const void *data = NULL;
        size_t n = 0;
        if (p->pa.peek(io->stream, &data, &n) < 0) {
            fault = 1;
            break;
        }
        if (n == 0)
            break;
        if (data != NULL)
            sb_ring_write(io->ring, data, (int64_t)n);
        p->pa.drop(io->stream);
    }
    return fault;
}

/* What the server holds and has not handed to the device yet (PulseStream._queued), in
 * bytes, or -1 before its first timing update. */
static int64_t queued(sb_port *p, void *stream) {
    uint64_t usec = 0;
    int negative = 0;
    if (p->pa.get_latency(stream, &usec, &negative) < 0 || negative)
        return -1;
    const pa_timing_head *timing = p->pa.get_timing_info(stream);
    if (timing == NULL)
        return -1;
    int64_t left = (int64_t)usec - (int64_t)timing->sink_usec;
    int64_t n = (left > 0 ? left : 0) * p->bytes_per_s / 1000000;
    return n - n % 2;
}

/* The speaker ring into the server's buffer (PulseStream._push). Mainloop lock held. */
static int push(sb_port *p, sb_io *io) {
    int fault = check_state(p, io);
    if (fault)
        return fault;
    size_t room = p->pa.writable_size(io->stream);
    if (room == (size_t)-1)
        return 1;
    int64_t most = (int64_t)room + (io->full_ticks == 0 ? io->over : 0);
    io->full_ticks = room ? 0 : io->full_ticks + 1;
    if (io->full_ticks >= io->stalled_ticks)
        sb_ring_keep_newest(io->ring, p->frame_bytes);
    int64_t cap = most < p->scratch_size ? most : p->scratch_size;
    int64_t n = sb_ring_drain(io->ring, p->scratch, cap, queued(p, io->stream));
    if (n > 0 &&
        p->pa.write(io->stream, p->scratch, (size_t)n, NULL, 0, PA_SEEK_RELATIVE) < 0)
        return 1;
    return 0;
}

/* One direction's device work on the tick, then the fault said with no lock held. */
static void move(sb_port *p, int dir) {
    int fault = 0;
    pthread_mutex_lock(&p->io_lock);
    sb_io *io = &p->io[dir];
    if (io->stream != NULL && !io->broken) {
        p->pa.lock(io->ml);
        fault = dir == 0 ? pull(p, io) : push(p, io);
        p->pa.unlock(io->ml);
        if (fault)
            io->broken = 1; /* said once; the stream is opened again from Python */
    }
    pthread_mutex_unlock(&p->io_lock);
    if (fault && p->on_fault != NULL)
        p->on_fault(dir);
}

static int port_get_frame(pjm_port *base, pjm_frame *frame) {
    sb_port *p = (sb_port *)base;
    move(p, 0);
    sb_ring_read(p->mic, frame->buf, p->frame_bytes);
    frame->size = (size_t)p->frame_bytes;
    frame->type = FRAME_AUDIO;
    return 0;
}

static int port_put_frame(pjm_port *base, pjm_frame *frame) {
    sb_port *p = (sb_port *)base;
    if (frame->type != FRAME_AUDIO)
        return 0;
    if (frame->size)
        sb_ring_write(p->speaker, frame->buf, (int64_t)frame->size);
    move(p, 1);
    return 0;
}

/* The bridge (or sb_port_close) dropped the last reference: the clock no longer calls. */
static int port_on_destroy(pjm_port *base) {
    sb_port *p = (sb_port *)base;
    pthread_mutex_destroy(&p->io_lock);
    if (p->pulse_lib != NULL)
        dlclose(p->pulse_lib);
    if (p->pjsua_lib != NULL)
        dlclose(p->pjsua_lib);
    free(p->scratch);
    free(p);
    return 0;
}

typedef int (*info_init_fn)(pjm_port_info *, const pj_str *, unsigned, unsigned, unsigned,
                            unsigned, unsigned);

/* Whether pjmedia fills a port info the way the declarations above lay it out: every
 * member read back where it was declared, and nothing written past its end. */
static int layout_matches(info_init_fn init, const pj_str *name, int32_t rate, int32_t ms) {
    unsigned char probe[sizeof(pjm_port_info) + 64];
    memset(probe, 0xA5, sizeof probe);
    pjm_port_info *info = (pjm_port_info *)probe;
    if (init(info, name, SIGNATURE, (unsigned)rate, 1, 16, (unsigned)(rate * ms / 1000)) != 0)
        return 0;
    for (size_t i = sizeof(pjm_port_info); i < sizeof probe; i++)
        if (probe[i] != 0xA5)
            return 0;
    const pjm_audio_detail *aud = &info->fmt.det.aud;
    return info->name.ptr == name->ptr && info->signature == SIGNATURE &&
           info->fmt.type == PJM_AUDIO && info->fmt.detail_type == PJM_AUDIO &&
           aud->clock_rate == (uint32_t)rate && aud->channel_count == 1 &&
           aud->bits_per_sample == 16 && aud->frame_time_usec == (uint32_t)ms * 1000 &&
           aud->avg_bps == (uint32_t)rate * 16;
}

static int load_pulse(sb_port *p) {
    p->pulse_lib = dlopen("libpulse.so.0", RTLD_NOW | RTLD_LOCAL);
    if (p->pulse_lib == NULL)
        return 0;
    void *l = p->pulse_lib;
    pa_api *a = &p->pa;
    *(void **)&a->lock = dlsym(l, "pa_threaded_mainloop_lock");
    *(void **)&a->unlock = dlsym(l, "pa_threaded_mainloop_unlock");
    *(void **)&a->get_state = dlsym(l, "pa_stream_get_state");
    *(void **)&a->peek = dlsym(l, "pa_stream_peek");
    *(void **)&a->drop = dlsym(l, "pa_stream_drop");
    *(void **)&a->writable_size = dlsym(l, "pa_stream_writable_size");
    *(void **)&a->write = dlsym(l, "pa_stream_write");
    *(void **)&a->get_latency = dlsym(l, "pa_stream_get_latency");
    *(void **)&a->get_timing_info = dlsym(l, "pa_stream_get_timing_info");
    return a->lock && a->unlock && a->get_state && a->peek && a->drop && a->writable_size &&
           a->write && a->get_latency && a->get_timing_info;
}

static sb_port *fail(sb_port *p, char *err, int32_t errlen, const char *why) {
    snprintf(err, (size_t)errlen, "%s", why);
    if (p != NULL)
        port_on_destroy(&p->base);
    return NULL;
}

sb_port *sb_port_open(const char *pjsua_path, sb_ring *mic, sb_ring *speaker,
                      int32_t clock_rate, int32_t frame_ms, sb_fault_cb on_fault, char *err,
                      int32_t errlen) {
    if (clock_rate <= 0 || frame_ms <= 0 || mic == NULL || speaker == NULL)
        return fail(NULL, err, errlen, "bad arguments");
    sb_port *p = calloc(1, sizeof *p);
    if (p == NULL)
        return fail(NULL, err, errlen, "out of memory");
    p->scratch_size = (int64_t)clock_rate * 2 * frame_ms / 1000 * 4; /* as PulseBackend's */
    p->scratch = malloc((size_t)p->scratch_size);
    if (p->scratch == NULL || pthread_mutex_init(&p->io_lock, NULL) != 0)
        return fail(p, err, errlen, "out of memory");
    p->pjsua_lib = dlopen(pjsua_path, RTLD_NOW | RTLD_NOLOAD);
    if (p->pjsua_lib == NULL)
        return fail(p, err, errlen, "pjsua2's library is not loaded in this process");
    void *l = p->pjsua_lib;
    info_init_fn info_init = (info_init_fn)dlsym(l, "pjmedia_port_info_init");
    void *(*pool_create)(const char *, size_t, size_t);
    int (*init_grp_lock)(pjm_port *, void *, void *);
    int (*conf_add_port)(void *, pjm_port *, int *);
    *(void **)&pool_create = dlsym(l, "pjsua_pool_create");
    *(void **)&init_grp_lock = dlsym(l, "pjmedia_port_init_grp_lock");
    *(void **)&conf_add_port = dlsym(l, "pjsua_conf_add_port");
    *(void **)&p->conf_remove_port = dlsym(l, "pjsua_conf_remove_port");
    *(void **)&p->port_dec_ref = dlsym(l, "pjmedia_port_dec_ref");
    if (!info_init || !pool_create || !init_grp_lock || !conf_add_port ||
        !p->conf_remove_port || !p->port_dec_ref)
        return fail(p, err, errlen, "pjsua2's library lacks the pjmedia port functions");
    pj_str name = {PORT_NAME, (long)strlen(PORT_NAME)};
    if (!layout_matches(info_init, &name, clock_rate, frame_ms))
        return fail(p, err, errlen, "pjmedia's port layout is not the one this was built for");
    p->has_pa = load_pulse(p);
    p->mic = mic;
    p->speaker = speaker;
    p->io[0].ring = mic;
    p->io[1].ring = speaker;
    p->frame_bytes = (int64_t)clock_rate * frame_ms / 1000 * 2;
    p->bytes_per_s = (int64_t)clock_rate * 2;
    p->on_fault = on_fault;
    p->slot = -1;
    info_init(&p->base.info, &name, SIGNATURE, (unsigned)clock_rate, 1, 16,
              (unsigned)(clock_rate * frame_ms / 1000));
    p->base.get_frame = port_get_frame;
    p->base.put_frame = port_put_frame;
    p->base.on_destroy = port_on_destroy;
    /* One pool for the port's life in the bridge; pjsua frees it at libDestroy. */
    void *pool = pool_create("sb-headset", 1024, 1024);
    if (pool == NULL)
        return fail(p, err, errlen, "pjsua could not make a memory pool");
    if (init_grp_lock(&p->base, pool, NULL) != 0)
        return fail(p, err, errlen, "pjmedia could not make the port's group lock");
    int slot = -1;
    if (conf_add_port(pool, &p->base, &slot) != 0) {
        snprintf(err, (size_t)errlen, "the conference bridge refused the port");
        p->port_dec_ref(&p->base); /* the last reference: on_destroy frees it */
        return NULL;
    }
    p->slot = slot;
    return p;
}

int32_t sb_port_slot(sb_port *p) { return p->slot; }

void sb_port_close(sb_port *p) {
    sb_port_attach(p, 0, NULL, NULL, 0, 0);
    sb_port_attach(p, 1, NULL, NULL, 0, 0);
    if (p->slot >= 0)
        p->conf_remove_port(p->slot);
    p->slot = -1;
    p->port_dec_ref(&p->base); /* ours; the bridge lets go of its own when it is done */
}

int32_t sb_port_attach(sb_port *p, int32_t dir, void *mainloop, void *stream, int32_t over,
                       int32_t stalled_ticks) {
    if (dir < 0 || dir > 1 || (stream != NULL && (!p->has_pa || mainloop == NULL)))
        return -1;
    pthread_mutex_lock(&p->io_lock);
    sb_io *io = &p->io[dir];
    io->ml = mainloop;
    io->stream = stream;
    io->over = over;
    io->stalled_ticks = stalled_ticks > 0 ? stalled_ticks : 1;
    io->full_ticks = 0;
    io->broken = 0;
    pthread_mutex_unlock(&p->io_lock);
    return 0;
}
