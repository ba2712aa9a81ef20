/* Deterministic lossy wire for link tests (see pl_wire.h). Own code; the PRNG is xorshift64*
 * (G. Marsaglia, "Xorshift RNGs", JSS 8(14), 2003; S. Vigna's * multiplier). */
#include "pl_wire.h"

#include <stdlib.h>
#include <string.h>

struct chunk {
    struct chunk *next;
    uint64_t due;
    size_t len, off;
    uint8_t data[];
};

struct pl_wire {
    struct pl_wire_cfg cfg;
    uint64_t rng;
    uint64_t now;
    uint64_t last_due;
    int cut;
    struct chunk *head, *tail;
    size_t in_flight;
    struct pl_wire_stats st;
};

static uint64_t next_rand(struct pl_wire *w)
{
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 2685821657736338717ull;
}

static unsigned rand_below(struct pl_wire *w, unsigned n)
{
    return n ? (unsigned)((next_rand(w) >> 33) % n) : 0;
}

static int chance(struct pl_wire *w, unsigned permille)
{
    return rand_below(w, 1000) < permille;
}

struct pl_wire *pl_wire_new(const struct pl_wire_cfg *cfg)
{
    struct pl_wire *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->cfg = *cfg;
    w->rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ull;
    return w;
}

void pl_wire_free(struct pl_wire *w)
{
    if (!w)
        return;
    while (w->head) {
        struct chunk *c = w->head;
        w->head = c->next;
        free(c);
    }
    free(w);
}

void pl_wire_set_now(struct pl_wire *w, uint64_t now_ms)
{
    w->now = now_ms;
}

void pl_wire_cut(struct pl_wire *w, int cut)
{
    w->cut = cut;
}

static void push(struct pl_wire *w, const uint8_t *buf, size_t len)
{
    if (len == 0)
        return;
    struct chunk *c = malloc(sizeof(*c) + len);
    if (!c)
        abort(); /* test support: out of memory is fatal */
    uint64_t due = w->now + rand_below(w, w->cfg.max_delay_ms + 1);
    if (due < w->last_due)
        due = w->last_due; /* FIFO, like a serial line */
    w->last_due = due;
    c->next = NULL;
    c->due = due;
    c->len = len;
    c->off = 0;
    memcpy(c->data, buf, len);
    if (w->tail)
        w->tail->next = c;
    else
        w->head = c;
    w->tail = c;
    w->in_flight += len;
}

int pl_wire_write(void *wire, const uint8_t *buf, size_t len)
{
    struct pl_wire *w = wire;
    w->st.writes++;
    w->st.bytes += len;
    if (w->cut || chance(w, w->cfg.drop_permille)) {
        w->st.dropped++;
        return 0;
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, buf, len);
    if (len && chance(w, w->cfg.corrupt_permille)) {
        unsigned n = 1 + rand_below(w, 3);
        for (unsigned i = 0; i < n; i++)
            copy[rand_below(w, (unsigned)len)] ^= (uint8_t)(1 + rand_below(w, 255));
        w->st.corrupted++;
    }
    push(w, copy, len);
    if (chance(w, w->cfg.dup_permille)) {
        push(w, copy, len);
        w->st.duplicated++;
    }
    if (chance(w, w->cfg.noise_permille)) {
        uint8_t noise[16];
        unsigned n = 1 + rand_below(w, 16);
        for (unsigned i = 0; i < n; i++)
            noise[i] = (uint8_t)next_rand(w);
        push(w, noise, n);
        w->st.noise++;
    }
    free(copy);
    return 0;
}

int pl_wire_pump(struct pl_wire *w, uint64_t now_ms,
                 int (*sink)(void *user, const uint8_t *buf, size_t len), void *user)
{
    while (w->head && w->head->due <= now_ms) {
        struct chunk *c = w->head;
        size_t left = c->len - c->off;
        size_t n = left;
        if (w->cfg.max_chunk) {
            n = 1 + rand_below(w, w->cfg.max_chunk);
            if (n > left)
                n = left;
        }
        c->off += n;
        w->in_flight -= n;
        if (c->off == c->len) {
            w->head = c->next;
            if (!w->head)
                w->tail = NULL;
        }
        int rc = sink(user, c->data + c->off - n, n);
        if (c->off == c->len)
            free(c);
        if (rc != 0)
            return rc;
    }
    return 0;
}

size_t pl_wire_in_flight(const struct pl_wire *w)
{
    return w->in_flight;
}

uint64_t pl_wire_next_due(const struct pl_wire *w)
{
    return w->head ? w->head->due : UINT64_MAX;
}

void pl_wire_get_stats(const struct pl_wire *w, struct pl_wire_stats *st)
{
    *st = w->st;
}
