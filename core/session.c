#include "core/session.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/config.h"
#include "connectors/util.h"
#include "core/atrn_client.h"
#include "core/conn.h"
#include "core/etrn.h"
#include "core/log.h"
#include "core/server.h"
#include "core/session_txn.h"
#include "core/smtp_in.h"
#include "core/tls.h"

/* Replies waiting beyond what the kernel took: above this the client is not
 * reading, and it is not read either (memory stays bounded). */
#define WRITE_HIGH (64 * 1024)

struct session {
    struct conn conn; /* first: the conn's handle is the session's */
    uv_timer_t timer; /* greet delay, then the command/data deadline */
    struct session_node node;
    struct server *srv;
    struct server_env *env;
    struct server_conf *conf;
    struct session_listener kind;
    struct smtp_in *m;
    struct session_txn *txn;
    struct atrn_client *atrn; /* an ATRN request, then its turnaround */
    struct sockaddr_storage peer;
    char ip[INET6_ADDRSTRLEN];
    bool relay_client;
    bool waiting;   /* a check is pending: the machine takes no more input */
    bool in_data;   /* between DATA_BEGIN and COMMIT/ABORT: data deadline */
    bool closing;
    bool greeted;
    bool in_read;   /* inside on_read: do not re-enter the conn */
    bool turned;    /* after ATRN's 250: bridgehead is the client (atrn) */
    unsigned open_handles; /* conn and timer: free when both are closed */
    unsigned auth_jobs;    /* crypt(3) checks and ETRN requests in flight */
};

struct auth_job {
    uv_work_t work;
    struct session *s;
    char *user, *password, *hash;
    bool ok;
};

static void process(struct session *s);

static void
maybe_free(struct session *s)
{
    if (s->open_handles > 0 || s->auth_jobs > 0)
        return;
    if (s->atrn != NULL) {
        if (atrn_client_busy(s->atrn))
            return; /* its idle callback comes back here */
        atrn_client_free(s->atrn);
        s->atrn = NULL;
    }
    server_session_closed(s->srv, s);
    session_txn_release(s->txn);
    smtp_in_free(s->m);
    server_conf_unref(s->conf);
    free(s);
}

static void
on_timer_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    s->open_handles--;
    maybe_free(s);
}

static void
on_conn_closed(struct conn *c)
{
    struct session *s = c->owner;
    s->open_handles--;
    maybe_free(s);
}

static void
close_session(struct session *s, bool graceful)
{
    if (s->closing)
        return;
    s->closing = true;
    if (s->atrn != NULL)
        atrn_client_stop(s->atrn);
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    conn_close(&s->conn, graceful);
}

static void
send_text(struct session *s, const char *text, size_t len)
{
    if (conn_write(&s->conn, text, len) < 0)
        close_session(s, false);
}

static void
on_deadline(uv_timer_t *t)
{
    struct session *s = t->data;
    char msg[300];
    int n = snprintf(msg, sizeof msg, "421 4.4.2 %s Error: timeout exceeded\r\n",
                     s->conf->config->hostname);
    log_info(s->env->log, "event=timeout client=%s phase=%s", s->ip,
             s->in_data ? "data" : "command");
    send_text(s, msg, (size_t)n);
    close_session(s, true);
}

/* A whole line was handled: the next one has a fresh deadline. In DATA the
 * deadline covers the whole phase and is not restarted. */
static void
arm_deadline(struct session *s)
{
    if (s->closing || s->in_data || s->turned)
        return;
    uv_timer_start(&s->timer, on_deadline, s->conf->config->timeout_command * 1000, 0);
}

static void
answer(struct session *s, int code, const char *text)
{
    s->waiting = false;
    smtp_in_result(s->m, code, text);
    process(s);
    if (!s->closing && !s->in_read)
        conn_resume(&s->conn);
}

/* ---- AUTH: crypt(3) is slow by design, so it runs in the thread pool ---- */

static void
auth_work(uv_work_t *w)
{
    struct auth_job *j = w->data;
    struct crypt_data *cd = xcalloc(1, sizeof *cd);
    const char *out = j->hash ? crypt_r(j->password, j->hash, cd) : NULL;
    j->ok = out != NULL && out[0] != '*' && strcmp(out, j->hash) == 0;
    explicit_bzero(cd, sizeof *cd);
    free(cd);
}

static void
auth_done(uv_work_t *w, int status)
{
    struct auth_job *j = w->data;
    struct session *s = j->s;
    (void)status;
    explicit_bzero(j->password, strlen(j->password));
    s->auth_jobs--;
    if (!s->closing) {
        char user[LOG_VALUE_MAX];
        log_info(s->env->log, "event=auth user=\"%s\" result=%s client=%s",
                 log_text(user, sizeof user, j->user), j->ok ? "ok" : "failed", s->ip);
        answer(s, j->ok ? 235 : 535,
               j->ok ? "2.7.0 Authentication successful"
                     : "5.7.8 Authentication credentials invalid");
    }
    free(j->user);
    free(j->password);
    free(j->hash);
    free(j);
    maybe_free(s);
}

static void
start_auth(struct session *s, const struct smtp_in_action *act)
{
    const struct config *c = s->conf->config;
    struct auth_job *j = xcalloc(1, sizeof *j);
    j->s = s;
    j->user = xstrdup(act->user);
    j->password = xstrdup(act->password);
    for (size_t i = 0; i < c->nusers; i++)
        if (strcmp(c->users[i].name, act->user) == 0)
            j->hash = xstrdup(c->users[i].hash);
    j->work.data = j;
    s->auth_jobs++;
    uv_queue_work(s->env->loop, &j->work, auth_work, auth_done);
}

/* ---- the machine's actions ------------------------------------------------ */

static void
txn_answer(void *owner, int code, const char *text)
{
    struct session *s = owner;
    if (s->closing)
        return;
    if (code == 0) { /* the spool caught up: read again */
        conn_resume(&s->conn);
        return;
    }
    answer(s, code, text);
}

/* The ETRN answer, at once or from the storage thread's callback. */
static void
etrn_answer(void *owner, int code, const char *text)
{
    struct session *s = owner;
    s->auth_jobs--;
    if (!s->closing)
        answer(s, code, text);
    maybe_free(s);
}

/* ---- ATRN (RFC 2645): the request, then bridgehead as the client ---------- */

static void
atrn_answer(void *owner, int code, const char *text)
{
    struct session *s = owner;
    if (code != 250) { /* the request is over and the client gone */
        s->atrn = NULL;
        answer(s, code, text);
        return;
    }
    /* The 250 goes out as the server's last words; then what was read but
     * not handled is dropped and every byte read is the peer's, as server. */
    s->turned = true;
    s->waiting = false;
    smtp_in_result(s->m, code, text);
    process(s);
    if (s->closing)
        return;
    conn_discard_input(&s->conn);
    if (!s->in_read)
        conn_resume(&s->conn);
}

static void
atrn_write(void *owner, const char *data, size_t len)
{
    send_text(owner, data, len);
}

static void
on_atrn_timer(uv_timer_t *t)
{
    struct session *s = t->data;
    if (s->atrn != NULL)
        atrn_client_timeout(s->atrn);
}

static void
atrn_arm(void *owner, uint64_t ms)
{
    struct session *s = owner;
    if (s->closing)
        return;
    if (ms == 0)
        uv_timer_stop(&s->timer);
    else
        uv_timer_start(&s->timer, on_atrn_timer, ms, 0);
}

static void
atrn_done(void *owner)
{
    close_session(owner, true);
}

static void
atrn_idle(void *owner)
{
    maybe_free(owner);
}

static const struct atrn_client_ops atrn_ops = {atrn_answer, atrn_write, atrn_arm, atrn_done,
                                                atrn_idle};

static void
start_atrn(struct session *s, const char *arg)
{
    char relay[INET6_ADDRSTRLEN + 8], text[400];
    unsigned port = s->peer.ss_family == AF_INET6
                        ? ntohs(((const struct sockaddr_in6 *)&s->peer)->sin6_port)
                        : ntohs(((const struct sockaddr_in *)&s->peer)->sin_port);
    snprintf(relay, sizeof relay, strchr(s->ip, ':') ? "[%s]:%u" : "%s:%u", s->ip, port);
    struct atrn_client_peer p = {
        .user = smtp_in_user(s->m),
        .relay = relay,
        .tls = s->conn.tls ? tls_conn_version(s->conn.tls) : NULL,
        .cipher = s->conn.tls ? tls_conn_cipher(s->conn.tls) : NULL,
    };
    int code = 0;
    s->waiting = true;
    s->atrn = atrn_client_start(s->env, s->conf, &p, arg, &atrn_ops, s, &code, text, sizeof text);
    if (s->atrn == NULL)
        answer(s, code, text);
}

static void
client_info(struct session *s, struct session_txn_client *cl)
{
    cl->ip = s->ip;
    cl->relay_client = s->relay_client;
    cl->tls_version = NULL;
    cl->tls_cipher = NULL;
    if (s->conn.tls && smtp_in_tls_active(s->m)) {
        cl->tls_version = tls_conn_version(s->conn.tls);
        cl->tls_cipher = tls_conn_cipher(s->conn.tls);
    }
}

static void
check(struct session *s, const struct smtp_in_action *act)
{
    struct session_txn_client cl;
    char text[512];
    int code;
    client_info(s, &cl);
    if (act->type == SMTP_IN_CHECK_MAIL)
        session_txn_check_mail(s->txn, s->conf, act, &code, text, sizeof text);
    else
        session_txn_check_rcpt(s->txn, s->conf, s->m, &cl, act, &code, text, sizeof text);
    smtp_in_result(s->m, code, text);
}

static void
on_starttls(struct session *s)
{
    if (s->conf->tls == NULL || conn_start_tls_server(&s->conn, s->conf->tls) < 0)
        close_session(s, false);
}

/* Carry out one action; returns false when the machine must wait. */
static bool
act_on(struct session *s, const struct smtp_in_action *act)
{
    struct session_txn_client cl;
    switch (act->type) {
    case SMTP_IN_REPLY:
        send_text(s, act->text, act->len);
        arm_deadline(s);
        return true;
    case SMTP_IN_STARTTLS:
        s->waiting = true; /* until the handshake is done */
        on_starttls(s);
        return false;
    case SMTP_IN_AUTH_CHECK:
        s->waiting = true;
        start_auth(s, act);
        return false;
    case SMTP_IN_CHECK_MAIL:
    case SMTP_IN_CHECK_RCPT:
        check(s, act);
        return true;
    case SMTP_IN_DATA_BEGIN:
        session_txn_begin(s->txn);
        s->in_data = true;
        uv_timer_start(&s->timer, on_deadline, s->conf->config->timeout_data * 1000, 0);
        return true;
    case SMTP_IN_DATA:
        if (!session_txn_data(s->txn, act->text, act->len))
            conn_pause(&s->conn);
        return true;
    case SMTP_IN_DATA_ABORT:
        s->in_data = false;
        session_txn_abort(s->txn);
        return true;
    case SMTP_IN_COMMIT:
        s->in_data = false;
        arm_deadline(s);
        client_info(s, &cl);
        s->waiting = true; /* the answer may come at once (a refusal) or later */
        session_txn_commit(s->txn, s->conf, s->m, &cl, act);
        return false;
    case SMTP_IN_ETRN:
        s->waiting = true;
        s->auth_jobs++;
        etrn_start(s->env, s->conf, s->relay_client || smtp_in_user(s->m) != NULL, act->text,
                   etrn_answer, s);
        return false;
    case SMTP_IN_ATRN:
        start_atrn(s, act->text);
        return false;
    case SMTP_IN_CLOSE:
        close_session(s, true);
        return false;
    case SMTP_IN_NONE:
        break;
    }
    return true;
}

static void
process(struct session *s)
{
    struct smtp_in_action act;
    while (!s->closing && !s->waiting && smtp_in_next(s->m, &act))
        act_on(s, &act);
}

/* ---- conn callbacks --------------------------------------------------------- */

static size_t
on_read(struct conn *c, const char *data, size_t len)
{
    struct session *s = c->owner;
    size_t off = 0;
    if (s->turned) { /* the peer is the server now */
        if (s->atrn != NULL && !s->closing)
            atrn_client_feed(s->atrn, data, len);
        return len;
    }
    s->in_read = true;
    while (off < len && !s->closing) {
        size_t n = smtp_in_feed(s->m, data + off, len - off);
        off += n;
        process(s);
        if (n == 0 || s->waiting || s->conn.paused || s->conn.wblocked)
            break;
    }
    s->in_read = false;
    if (s->closing)
        return len;
    if (off < len && !s->conn.wblocked) /* the conn keeps the rest either way */
        conn_pause(&s->conn);
    return off;
}

static void
on_error(struct conn *c, int status)
{
    struct session *s = c->owner;
    if (status != UV_EOF)
        log_debug(s->env->log, "event=disconnect client=%s error=\"%s\"", s->ip,
                  uv_strerror(status));
    if (s->turned && s->atrn != NULL && !s->closing)
        atrn_client_eof(s->atrn); /* settles the message in hand, then closes */
    close_session(s, false);
}

static void
greet(struct session *s)
{
    s->greeted = true;
    smtp_in_greet(s->m);
    process(s);
    arm_deadline(s);
}

static void
on_greet_delay(uv_timer_t *t)
{
    struct session *s = t->data;
    greet(s);
}

static void
on_tls_done(struct conn *c, int status)
{
    struct session *s = c->owner;
    if (status < 0) {
        s->env->counters.tls_in_failed++;
        log_info(s->env->log, "event=tls_failed client=%s error=\"%s\"", s->ip,
                 tls_conn_error(c->tls));
        close_session(s, false);
        return;
    }
    s->env->counters.tls_in_ok++;
    s->waiting = false;
    if (!s->greeted) { /* implicit TLS: the greeting goes inside it */
        if (s->conf->config->greet_delay > 0)
            uv_timer_start(&s->timer, on_greet_delay, s->conf->config->greet_delay * 1000, 0);
        else
            greet(s);
    } else {
        smtp_in_tls_started(s->m);
        arm_deadline(s);
        process(s);
    }
    if (!s->closing)
        conn_resume(&s->conn);
}


static const struct conn_ops session_ops = {on_read, on_error, on_tls_done, on_conn_closed};

struct session *
session_new(struct server *srv, struct server_env *env, struct server_conf *conf,
            const struct session_listener *l)
{
    struct session *s = xcalloc(1, sizeof *s);
    s->srv = srv;
    s->env = env;
    s->conf = server_conf_ref(conf);
    s->kind = *l;
    conn_init(env->loop, &s->conn, env->shared, &session_ops, s);
    s->conn.write_high = WRITE_HIGH;
    uv_timer_init(env->loop, &s->timer);
    s->timer.data = s;
    s->open_handles = 2;
    return s;
}

struct conn *
session_conn(struct session *s)
{
    return &s->conn;
}

struct session_node *
session_node(struct session *s)
{
    return &s->node;
}

const struct sockaddr_storage *
session_peer(const struct session *s)
{
    return &s->peer;
}

/* The client's address as text; an IPv4-mapped IPv6 address as IPv4. */
static void
peer_text(struct session *s)
{
    const struct sockaddr_storage *p = &s->peer;
    if (p->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)p)->sin_addr, s->ip, sizeof s->ip);
    } else if (p->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)p)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a))
            inet_ntop(AF_INET, &a->s6_addr[12], s->ip, sizeof s->ip);
        else
            inet_ntop(AF_INET6, a, s->ip, sizeof s->ip);
    } else {
        strcpy(s->ip, "unknown");
    }
}

static void
make_machine(struct session *s)
{
    const struct config *c = s->conf->config;
    struct smtp_in_params p = {
        .hostname = c->hostname,
        .max_message_size = c->max_message_size,
        .max_recipients = c->max_recipients,
        .tls_available = s->conf->tls != NULL,
        .tls_active = s->kind.tls == CONFIG_LISTEN_IMPLICIT,
        .auth_available = c->users_file != NULL,
        .odmr = s->kind.odmr,
        .greet_delay = c->greet_delay > 0,
    };
    s->m = smtp_in_new(&p);
    if (s->m == NULL)
        abort();
}

void
session_start(struct session *s, const struct sockaddr_storage *peer, const char *reject)
{
    s->peer = *peer;
    peer_text(s);
    if (reject != NULL) {
        log_info(s->env->log, "event=reject client=%s reply=\"%.*s\"", s->ip,
                 (int)strcspn(reject, "\r\n"), reject);
        send_text(s, reject, strlen(reject));
        close_session(s, true);
        return;
    }
    const struct config *c = s->conf->config;
    s->relay_client = config_relay_allowed(c, (const struct sockaddr *)peer);
    s->txn = session_txn_new(s->env, txn_answer, s);
    make_machine(s);
    if (s->env->shutting_down)
        smtp_in_shutdown(s->m);
    conn_start(&s->conn);
    if (s->kind.tls == CONFIG_LISTEN_IMPLICIT) {
        s->waiting = true;
        conn_start_tls_server(&s->conn, s->conf->tls);
        uv_timer_start(&s->timer, on_deadline, c->timeout_command * 1000, 0);
        return;
    }
    if (c->greet_delay > 0) {
        uv_timer_start(&s->timer, on_greet_delay, c->greet_delay * 1000, 0);
        return;
    }
    greet(s);
}

void
session_shutdown(struct session *s)
{
    if (s->closing || s->m == NULL)
        return;
    smtp_in_shutdown(s->m);
    process(s);
}

void
session_close(struct session *s)
{
    close_session(s, false);
}
