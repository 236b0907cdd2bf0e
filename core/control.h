/*
 * control: the server's control socket (SPEC §6, §9 "bridgehead reload"),
 * a Unix stream socket at "<storage.path>.sock", mode 0660, through which
 * `bridgehead queue ...` and `bridgehead reload` reach a running server;
 * and the blocking client those commands use.
 *
 * Protocol: one request per connection. The client sends one line, the
 * wire form of a struct control_req (core/control_req.h), e.g.
 * "list json state=held\n" or "reload\n". The server answers with lines
 *     out TEXT     a line the command prints on stdout
 *     err TEXT     a line it prints on stderr
 *     end CODE     last: 0 on success, else a negative BH_E* code
 * then closes the connection. For reload, CODE 0 means the server swapped
 * configs; otherwise the err lines hold the positioned errors.
 *
 * Queue requests run on the storage writer thread (store_call, never
 * SQLite on the loop thread), or, for those that only read (list, show,
 * stats), on the reader store's thread once control_set_reader() gave one;
 * their answer is written once the storage thread is done. After a flush the server calls ops->wake so that the
 * scheduler looks at the queue again. A reload calls ops->reload on the
 * loop thread.
 *
 * Ownership: the control server owns its listener and client connections;
 * the store, log and ops are borrowed and must outlive control_close().
 * control_close() closes everything and frees the server once the last
 * handle is closed and the last storage job is done (the loop must run
 * once more, and store_close() may run after it: jobs still in flight then
 * finish and are dropped).
 *
 * Threads: control_new/listen/close on the loop thread. control_call() and
 * control_socket_path() from any thread (plain blocking code, no libuv).
 */
#ifndef BH_CORE_CONTROL_H
#define BH_CORE_CONTROL_H

#include <stddef.h>
#include <stdio.h>
#include <uv.h>

struct store;
struct log;
struct util_buf;

struct control_ops {
    void *arg;
    /* Reload the config; 0 when the new one is in force, else a negative
     * code with one line per error ("FILE:LINE:COL: msg\n") in errors. */
    int (*reload)(void *arg, struct util_buf *errors);
    /* After a flush: look at the queue now. NULL: nobody to wake. */
    void (*wake)(void *arg);
};

struct control;

/* "<storage_path>.sock", a new string the caller frees. */
char *control_socket_path(const char *storage_path);

struct control *control_new(uv_loop_t *loop, struct store *store, struct log *log,
                            const struct control_ops *ops);

/*
 * Listen on path. A socket left there by a server that is gone is removed
 * first; one that still answers, or a file that is not a socket, is an
 * error. Returns 0, or a negative code with a message in err (then
 * control_close() the server).
 */
int control_listen(struct control *c, const char *path, char *err, size_t errlen);

/* Run read-only requests on reader (a store on a QUEUE_READONLY handle,
 * borrowed like the store). */
void control_set_reader(struct control *c, struct store *reader);

/* Stop listening, remove the socket file, close every connection; the
 * server frees itself when the last one is gone. NULL is fine. */
void control_close(struct control *c);

/*
 * Client side: send request (one wire line with its LF) to the server on
 * path, copy its out lines to out and its err lines to err as they come,
 * and set *status to its end code. Returns 0 when the server answered,
 * BH_ENOENT when no server answers on path (no socket, a stale one, or a
 * path too long for a socket), BH_EIO (with a message in errmsg) when the
 * conversation broke, or BH_EAGAIN when the server did not answer within
 * timeout_ms.
 */
int control_call(const char *path, const char *request, FILE *out, FILE *err, int *status,
                 int timeout_ms, char *errmsg, size_t errlen);

#endif
