/*
 * conn: one TCP connection on the libuv loop, plain or TLS, behind one
 * interface (Redis-style): the owner reads and writes plaintext, and may
 * switch the connection to TLS in the middle (STARTTLS) or from the start
 * (implicit TLS). TLS runs through core/tls memory BIOs, never a blocking
 * SSL call on a socket.
 *
 * Ownership: the owner embeds a struct conn (which embeds its uv_tcp_t) and
 * frees itself only in ops->closed, after libuv has let go of the handle.
 * Reads land in a buffer shared by every conn of one loop (struct
 * conn_shared), so an idle connection holds no read buffer; bytes that the
 * owner does not take are kept in a small per-conn leftover buffer until
 * conn_resume(). Writes try uv_try_write first and queue a copy only for
 * what the kernel would not take. An owner may set write_high: while more
 * than that waits in the write queue (a peer that sends but does not read),
 * the conn hands over nothing and stops reading, until half of it is
 * written.
 *
 * Loop thread only.
 */
#ifndef BH_CORE_CONN_H
#define BH_CORE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct conn;
struct tls_conn;
struct tls_server_ctx;
struct tls_client_ctx;

#define CONN_READ_BUF (64 * 1024)

/* One per loop: the read buffer every conn shares. */
struct conn_shared {
    char rbuf[CONN_READ_BUF];
};

struct conn_ops {
    /* Plaintext arrived. Return how many bytes were taken; the conn keeps
     * the rest, stops reading, and hands them over again on conn_resume(). */
    size_t (*read)(struct conn *c, const char *data, size_t len);
    /* The peer closed (status UV_EOF) or the connection failed (< 0). */
    void (*error)(struct conn *c, int status);
    /* A TLS handshake finished: 0, or BH_EIO (tls_conn_error says why). */
    void (*tls_done)(struct conn *c, int status);
    /* The handle is closed: the owner may free itself now. */
    void (*closed)(struct conn *c);
};

struct conn {
    uv_tcp_t tcp; /* first, so that a handle pointer is a conn pointer */
    const struct conn_ops *ops;
    void *owner;
    struct conn_shared *shared;
    struct tls_conn *tls; /* NULL: plaintext */
    char *left;           /* bytes the owner has not taken yet */
    size_t left_len;
    bool reading, paused, closing, handshaking, eof;
    size_t write_high; /* > 0: the write queue limit above (set after conn_init) */
    bool wblocked;     /* over write_high: reading waits for the queue to drain */
};

/* Initialise c on loop (uv_tcp_init). 0 or a libuv error. */
int conn_init(uv_loop_t *loop, struct conn *c, struct conn_shared *shared,
              const struct conn_ops *ops, void *owner);
/* Start (or restart) reading. */
int conn_start(struct conn *c);
/* Stop handing over data until conn_resume. */
void conn_pause(struct conn *c);
void conn_resume(struct conn *c);
/* Drop everything received but not yet taken (STARTTLS injection defence). */
void conn_discard_input(struct conn *c);

/* Send plaintext (encrypted when TLS is on). 0 or a negative error. */
int conn_write(struct conn *c, const char *data, size_t len);

/* Switch to TLS. For the server side, call after the "220 ready" reply has
 * been written. ops->tls_done reports the result. */
int conn_start_tls_server(struct conn *c, struct tls_server_ctx *ctx);
int conn_start_tls_client(struct conn *c, struct tls_client_ctx *ctx, const char *sni);

/* Close after queued writes are flushed (graceful) or at once. A graceful
 * close does not wait for a write queue that the kernel would not take (a
 * peer that does not read would hold it open forever). Either way
 * ops->closed runs exactly once, later, from the loop. */
void conn_close(struct conn *c, bool graceful);

/* Bytes queued in libuv for writing (for backpressure decisions). */
size_t conn_write_queue_size(const struct conn *c);

#endif
