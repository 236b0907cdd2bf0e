#include "core/control_req.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/util.h"
#include "storage/queue_admin.h"

static const char *const verb_names[] = {
    [CONTROL_LIST] = "list",       [CONTROL_SHOW] = "show",     [CONTROL_HOLD] = "hold",
    [CONTROL_RELEASE] = "release", [CONTROL_DELETE] = "delete", [CONTROL_FLUSH] = "flush",
    [CONTROL_STATS] = "stats",     [CONTROL_RELOAD] = "reload",
};

#define NVERBS (sizeof verb_names / sizeof verb_names[0])

void
control_req_init(struct control_req *r, enum control_verb verb)
{
    memset(r, 0, sizeof *r);
    r->verb = verb;
    r->state = QUEUE_STATE_ANY;
}

const char *
control_req_verb_name(enum control_verb v)
{
    return (unsigned)v < NVERBS ? verb_names[v] : NULL;
}

int
control_req_verb_parse(const char *name, enum control_verb *v)
{
    for (size_t i = 0; i < NVERBS; i++) {
        if (strcmp(name, verb_names[i]) == 0) {
            *v = (enum control_verb)i;
            return 0;
        }
    }
    return BH_EINVAL;
}

bool
control_req_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

bool
control_req_writes(const struct control_req *r)
{
    return r->verb == CONTROL_HOLD || r->verb == CONTROL_RELEASE || r->verb == CONTROL_DELETE ||
           r->verb == CONTROL_FLUSH;
}

static bool
needs_id(enum control_verb v)
{
    return v == CONTROL_SHOW || v == CONTROL_HOLD || v == CONTROL_RELEASE || v == CONTROL_DELETE;
}

int
control_req_check(const struct control_req *r, char *err, size_t errlen)
{
    const char *v = control_req_verb_name(r->verb);
    const char *bad = NULL;
    if (v == NULL)
        bad = "unknown request";
    else if (needs_id(r->verb) && r->id[0] == '\0')
        bad = "needs a queue ID";
    else if (r->id[0] != '\0' && !needs_id(r->verb) && r->verb != CONTROL_FLUSH)
        bad = "takes no queue ID";
    else if (r->json && r->verb != CONTROL_LIST && r->verb != CONTROL_SHOW &&
             r->verb != CONTROL_STATS)
        bad = "has no --json output";
    else if (r->now && r->verb != CONTROL_FLUSH)
        bad = "takes no --now";
    else if (r->connector[0] != '\0' && r->verb != CONTROL_LIST && r->verb != CONTROL_FLUSH)
        bad = "takes no --connector";
    else if (r->connector[0] != '\0' && r->id[0] != '\0')
        bad = "takes --connector NAME or an ID, not both";
    else if (r->state != QUEUE_STATE_ANY && r->verb != CONTROL_LIST)
        bad = "takes no --state";
    if (bad == NULL)
        return 0;
    snprintf(err, errlen, "%s %s", v != NULL ? v : "request", bad);
    return BH_EINVAL;
}

void
control_req_format(const struct control_req *r, struct util_buf *out)
{
    util_buf_puts(out, control_req_verb_name(r->verb));
    if (r->json)
        util_buf_puts(out, " json");
    if (r->now)
        util_buf_puts(out, " now");
    if (r->connector[0] != '\0')
        util_buf_printf(out, " connector=%s", r->connector);
    if (r->state != QUEUE_STATE_ANY)
        util_buf_printf(out, " state=%s", queue_state_name(r->state));
    if (r->id[0] != '\0')
        util_buf_printf(out, " id=%s", r->id);
    util_buf_puts(out, "\n");
}

/* Copy a value that must be 1..CONTROL_REQ_MAX_VALUE printable non-space
 * ASCII bytes. */
static bool
copy_value(char *dst, const char *src)
{
    size_t n = strlen(src);
    if (n < 1 || n > CONTROL_REQ_MAX_VALUE)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)src[i] < 0x21 || (unsigned char)src[i] > 0x7e)
            return false;
    memcpy(dst, src, n + 1);
    return true;
}

static int
parse_arg(struct control_req *r, const char *a, char *err, size_t errlen)
{
    bool ok;
    if (strcmp(a, "json") == 0)
        ok = r->json = true;
    else if (strcmp(a, "now") == 0)
        ok = r->now = true;
    else if (strncmp(a, "connector=", 10) == 0)
        ok = control_req_name_valid(a + 10) && copy_value(r->connector, a + 10);
    else if (strncmp(a, "state=", 6) == 0)
        ok = queue_state_parse(a + 6, &r->state) == 0;
    else if (strncmp(a, "id=", 3) == 0)
        ok = copy_value(r->id, a + 3);
    else
        ok = false;
    if (ok)
        return 0;
    snprintf(err, errlen, "bad argument '%.64s'", a);
    return BH_EINVAL;
}

int
control_req_parse(const char *line, struct control_req *r, char *err, size_t errlen)
{
    char buf[CONTROL_REQ_MAX_LINE];
    size_t n = strcspn(line, "\n");
    control_req_init(r, CONTROL_LIST);
    if (n >= sizeof buf || (line[n] == '\n' && line[n + 1] != '\0')) {
        snprintf(err, errlen, "a request is one line of less than %d bytes", CONTROL_REQ_MAX_LINE);
        return BH_EINVAL;
    }
    memcpy(buf, line, n);
    buf[n] = '\0';
    char *save = NULL;
    char *w = strtok_r(buf, " ", &save);
    if (w == NULL || control_req_verb_parse(w, &r->verb) != 0) {
        snprintf(err, errlen, "unknown request '%.32s'", w != NULL ? w : "");
        return BH_EINVAL;
    }
    while ((w = strtok_r(NULL, " ", &save)) != NULL)
        if (parse_arg(r, w, err, errlen) != 0)
            return BH_EINVAL;
    return control_req_check(r, err, errlen);
}

/* ---- output ---- */

static char *
iso(int64_t t, char *buf, size_t len)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)t);
    return buf;
}

static bool
has_next(const struct queue_entry *e)
{
    return e->state != QUEUE_HELD && e->state != QUEUE_TRIGGERED && e->next_attempt != QUEUE_NEVER;
}

/* The envelope sender as shown: "<>" for the null sender. */
static const char *
sender_shown(const char *s)
{
    return s == NULL || s[0] == '\0' ? "<>" : s;
}

static const char *
priority_name(int p)
{
    return p <= 0 ? "low" : p == 1 ? "normal" : "high";
}

/* Text for a terminal: control bytes (from remote replies, addresses)
 * become '?', then pad to width. */
static void
put_text(struct util_buf *b, const char *s, size_t width)
{
    size_t n = 0;
    for (; s != NULL && s[n] != '\0'; n++) {
        char c = ((unsigned char)s[n] < 0x20 || s[n] == 0x7f) ? '?' : s[n];
        util_buf_append(b, &c, 1);
    }
    for (; n < width; n++)
        util_buf_append(b, " ", 1);
}

static void
json_time(struct util_buf *b, int64_t t, bool present)
{
    char tb[40];
    if (present)
        util_buf_printf(b, "\"%s\"", iso(t, tb, sizeof tb));
    else
        util_buf_puts(b, "null");
}

/* The per-recipient fields shared by list and show. */
static void
json_rcpt_fields(struct util_buf *b, const struct queue_entry *e)
{
    util_buf_puts(b, "\"recipient\":");
    util_buf_json_str(b, e->rcpt != NULL ? e->rcpt : "");
    util_buf_puts(b, ",\"connector\":");
    util_buf_json_str(b, e->connector != NULL ? e->connector : "");
    util_buf_printf(b, ",\"state\":\"%s\",\"attempts\":%u,\"next_attempt\":",
                    queue_state_name(e->state), e->attempts);
    json_time(b, e->next_attempt, has_next(e));
    util_buf_puts(b, ",\"last_reply\":");
    util_buf_json_str(b, e->last_reply);
    util_buf_puts(b, ",\"node\":"); /* SPEC §8: the lease holder; null on SQLite */
    util_buf_json_str(b, e->node);
}

static void
json_entry(struct util_buf *b, const struct queue_entry *e)
{
    util_buf_puts(b, "{\"id\":");
    util_buf_json_str(b, e->id);
    util_buf_puts(b, ",\"recipient\":");
    util_buf_json_str(b, e->rcpt != NULL ? e->rcpt : "");
    util_buf_puts(b, ",\"sender\":");
    util_buf_json_str(b, sender_shown(e->sender));
    util_buf_puts(b, ",\"connector\":");
    util_buf_json_str(b, e->connector != NULL ? e->connector : "");
    util_buf_printf(b, ",\"state\":\"%s\",\"attempts\":%u,\"size\":%llu,\"received\":",
                    queue_state_name(e->state), e->attempts, (unsigned long long)e->size);
    json_time(b, e->received, true);
    util_buf_puts(b, ",\"next_attempt\":");
    json_time(b, e->next_attempt, has_next(e));
    util_buf_puts(b, ",\"last_reply\":");
    util_buf_json_str(b, e->last_reply);
    /* SPEC §8: the lease holder of a delivering entry; null on SQLite. */
    util_buf_puts(b, ",\"node\":");
    util_buf_json_str(b, e->node);
    util_buf_puts(b, "}\n");
}

static const char list_header[] =
    "ID               STATE       ATT      SIZE RECEIVED             NEXT ATTEMPT         "
    "CONNECTOR        SENDER -> RECIPIENT\n";

static void
text_entry(struct util_buf *b, const struct queue_entry *e)
{
    char rt[40], nt[40];
    util_buf_printf(b, "%-16s %-10s %4u %9llu %-20s %-20s ", e->id, queue_state_name(e->state),
                    e->attempts, (unsigned long long)e->size, iso(e->received, rt, sizeof rt),
                    has_next(e) ? iso(e->next_attempt, nt, sizeof nt) : "-");
    put_text(b, e->connector, 16);
    util_buf_puts(b, " <");
    put_text(b, e->sender, 0);
    util_buf_puts(b, "> -> <");
    put_text(b, e->rcpt, 0);
    util_buf_puts(b, ">\n");
}

/* What list and show accumulate while the walk goes on. */
struct walk {
    struct util_buf *out;
    bool json;
    size_t n;
};

static int
list_cb(const struct queue_entry *e, void *arg)
{
    struct walk *w = arg;
    if (w->json) {
        json_entry(w->out, e);
    } else {
        if (w->n == 0)
            util_buf_puts(w->out, list_header);
        text_entry(w->out, e);
    }
    w->n++;
    return 0;
}

/* show: the message's fields once, before its first recipient. */
static void
show_head(struct util_buf *b, const struct queue_entry *e, bool json)
{
    char tb[40];
    if (json) {
        util_buf_puts(b, "{\"id\":");
        util_buf_json_str(b, e->id);
        util_buf_puts(b, ",\"sender\":");
        util_buf_json_str(b, sender_shown(e->sender));
        util_buf_printf(b, ",\"size\":%llu,\"received\":", (unsigned long long)e->size);
        json_time(b, e->received, true);
        util_buf_printf(b,
                        ",\"priority\":\"%s\",\"system\":%s,\"envid\":", priority_name(e->priority),
                        e->system ? "true" : "false");
        util_buf_json_str(b, e->envid);
        util_buf_puts(b, ",\"recipients\":[");
        return;
    }
    util_buf_printf(b, "id:         %s\nsender:     <", e->id);
    put_text(b, e->sender, 0);
    util_buf_printf(b, ">\nsize:       %llu\nreceived:   %s\npriority:   %s\nsystem:     %s\n",
                    (unsigned long long)e->size, iso(e->received, tb, sizeof tb),
                    priority_name(e->priority), e->system ? "yes" : "no");
    util_buf_puts(b, "recipients:\n  STATE       ATT NEXT ATTEMPT         CONNECTOR        "
                     "RECIPIENT\n");
}

static int
show_cb(const struct queue_entry *e, void *arg)
{
    struct walk *w = arg;
    char nt[40];
    if (w->n == 0)
        show_head(w->out, e, w->json);
    if (w->json) {
        util_buf_puts(w->out, w->n > 0 ? ",{" : "{");
        json_rcpt_fields(w->out, e);
        util_buf_puts(w->out, "}");
    } else {
        util_buf_printf(w->out, "  %-10s %4u %-20s ", queue_state_name(e->state), e->attempts,
                        has_next(e) ? iso(e->next_attempt, nt, sizeof nt) : "-");
        put_text(w->out, e->connector, 16);
        util_buf_puts(w->out, " <");
        put_text(w->out, e->rcpt, 0);
        util_buf_puts(w->out, ">\n");
        if (e->last_reply != NULL) {
            util_buf_puts(w->out, "    last reply: ");
            put_text(w->out, e->last_reply, 0);
            util_buf_puts(w->out, "\n");
        }
        if (e->node != NULL) {
            util_buf_puts(w->out, "    leased by:  ");
            put_text(w->out, e->node, 0);
            util_buf_puts(w->out, "\n");
        }
    }
    w->n++;
    return 0;
}

/* ---- stats ---- */

struct stat_row {
    char *connector;
    enum queue_state state;
    uint64_t count[QUEUE_ADMIN_AGE_BUCKETS];
};

struct stat_rows {
    struct stat_row *v;
    size_t n, cap;
};

static int
stats_cb(const struct queue_admin_stat *s, void *arg)
{
    struct stat_rows *rows = arg;
    if (rows->n == rows->cap) {
        rows->cap = rows->cap ? 2 * rows->cap : 16;
        rows->v = xrealloc(rows->v, rows->cap * sizeof *rows->v);
    }
    struct stat_row *r = &rows->v[rows->n++];
    r->connector = xstrdup(s->connector);
    r->state = s->state;
    memcpy(r->count, s->count, sizeof r->count);
    return 0;
}

static uint64_t
row_total(const uint64_t *count)
{
    uint64_t t = 0;
    for (int i = 0; i < QUEUE_ADMIN_AGE_BUCKETS; i++)
        t += count[i];
    return t;
}

static void
stats_json(struct util_buf *b, const struct stat_row *r)
{
    util_buf_puts(b, "{\"connector\":");
    util_buf_json_str(b, r->connector);
    util_buf_printf(b, ",\"state\":\"%s\",\"total\":%llu,\"buckets\":{", queue_state_name(r->state),
                    (unsigned long long)row_total(r->count));
    for (int i = 0; i < QUEUE_ADMIN_AGE_BUCKETS; i++)
        util_buf_printf(b, "%s\"%s\":%llu", i > 0 ? "," : "", queue_admin_age_bucket_name(i),
                        (unsigned long long)r->count[i]);
    util_buf_puts(b, "}}\n");
}

static void
stats_text_row(struct util_buf *b, const char *conn, const char *state, const uint64_t *count,
               size_t width)
{
    put_text(b, conn, width);
    util_buf_printf(b, " %-10s %9llu", state, (unsigned long long)row_total(count));
    for (int i = 0; i < QUEUE_ADMIN_AGE_BUCKETS; i++)
        util_buf_printf(b, " %9llu", (unsigned long long)count[i]);
    util_buf_puts(b, "\n");
}

/* A qshape-like table: one row per connector and state, then the total. */
static void
stats_text(struct util_buf *b, const struct stat_rows *rows)
{
    size_t width = 9;
    uint64_t total[QUEUE_ADMIN_AGE_BUCKETS] = {0};
    for (size_t i = 0; i < rows->n; i++) {
        size_t n = strlen(rows->v[i].connector);
        width = n > width ? n : width;
        for (int k = 0; k < QUEUE_ADMIN_AGE_BUCKETS; k++)
            total[k] += rows->v[i].count[k];
    }
    put_text(b, "CONNECTOR", width);
    util_buf_printf(b, " %-10s %9s", "STATE", "TOTAL");
    for (int i = 0; i < QUEUE_ADMIN_AGE_BUCKETS; i++)
        util_buf_printf(b, " %9s", queue_admin_age_bucket_name(i));
    util_buf_puts(b, "\n");
    for (size_t i = 0; i < rows->n; i++)
        stats_text_row(b, rows->v[i].connector, queue_state_name(rows->v[i].state),
                       rows->v[i].count, width);
    stats_text_row(b, "TOTAL", "", total, width);
}

static int
run_stats(struct queue *q, const struct control_req *r, int64_t now, struct util_buf *out)
{
    struct stat_rows rows = {0};
    int rc = q != NULL ? queue_admin_stats(q, now, stats_cb, &rows) : 0;
    if (rc == 0 && rows.n > 0 && !r->json)
        stats_text(out, &rows);
    for (size_t i = 0; i < rows.n; i++) {
        if (rc == 0 && r->json)
            stats_json(out, &rows.v[i]);
        free(rows.v[i].connector);
    }
    free(rows.v);
    return rc;
}

/* ---- the other verbs ---- */

struct flush {
    int64_t now;
    bool all; /* --now: scheduled entries too */
};

/* Make an entry due now. Triggered entries were waiting for this and
 * become queued; scheduled ones only with --now; held ones stay held. With
 * --now the next attempt also ignores the connector's schedule (the mark
 * is stored, so it holds when the server starts later). */
static bool
flush_cb(const struct queue_entry *e, struct queue_admin_change *c, void *arg)
{
    const struct flush *f = arg;
    if (e->held || (c->state == QUEUE_SCHEDULED && !f->all))
        return false;
    if (c->state == QUEUE_SCHEDULED || c->state == QUEUE_TRIGGERED)
        c->state = QUEUE_QUEUED;
    else if (c->state != QUEUE_QUEUED && c->state != QUEUE_DEFERRED)
        return false;
    if (c->next_attempt > f->now)
        c->next_attempt = f->now;
    if (f->all)
        c->ignore_schedule = true;
    return true;
}

static int
run_flush(struct queue *q, const struct control_req *r, int64_t now, struct util_buf *out)
{
    struct flush f = {now, r->now};
    struct queue_admin_filter filt = {r->connector[0] ? r->connector : NULL, QUEUE_STATE_ANY,
                                      r->id[0] ? r->id : NULL};
    int n = 0;
    if (q != NULL)
        n = queue_admin_reroute(q, &filt, flush_cb, &f);
    else if (r->id[0] != '\0')
        n = BH_ENOENT;
    if (n < 0)
        return n;
    util_buf_printf(out, "%d %s due now\n", n, n == 1 ? "entry" : "entries");
    return 0;
}

static int
run_walk(struct queue *q, const struct control_req *r, struct util_buf *out)
{
    struct walk w = {out, r->json, 0};
    bool show = r->verb == CONTROL_SHOW;
    struct queue_admin_filter f = {r->connector[0] ? r->connector : NULL, r->state,
                                   show ? r->id : NULL};
    if (q == NULL)
        return show ? BH_ENOENT : 0;
    int rc = queue_admin_list(q, &f, show ? show_cb : list_cb, &w);
    if (rc == 0 && show && w.json && w.n > 0)
        util_buf_puts(out, "]}\n");
    return rc;
}

static int
run_by_message(struct queue *q, const struct control_req *r, struct util_buf *out)
{
    int rc;
    const char *done;
    char id[QUEUE_ID_LEN + 1];
    if (q == NULL)
        return BH_ENOENT;
    queue_id_normalise(r->id, id);
    if (r->verb == CONTROL_HOLD) {
        rc = queue_admin_hold(q, r->id);
        done = "held";
    } else if (r->verb == CONTROL_RELEASE) {
        rc = queue_admin_release(q, r->id);
        done = "released";
    } else {
        rc = queue_admin_delete(q, r->id);
        done = "deleted";
    }
    if (rc == 0)
        util_buf_printf(out, "%s: %s\n", id, done);
    return rc;
}

static const char *
error_text(int rc)
{
    switch (rc) {
    case BH_ENOSPC:
        return "the disk is full";
    case BH_EIO:
        return "I/O error";
    case BH_EBUSY:
        return "the queue is busy";
    case BH_EINVAL:
        return "invalid request";
    default:
        return "error";
    }
}

static int
report(struct queue *q, const struct control_req *r, int rc, struct util_buf *err)
{
    if (rc == BH_ENOENT && r->id[0] != '\0') {
        util_buf_puts(err, "bridgehead: no such message in the queue: ");
        put_text(err, r->id, 0);
        util_buf_puts(err, "\n");
    } else if (rc < 0) {
        const char *why = q != NULL ? queue_last_error(q) : "";
        util_buf_printf(err, "bridgehead: queue: %s (%d)%s%s\n", error_text(rc), rc,
                        why[0] ? ": " : "", why);
    }
    return rc;
}

int
control_req_run(struct queue *q, const struct control_req *r, int64_t now, struct util_buf *out,
                struct util_buf *err)
{
    char msg[160];
    if (r->verb == CONTROL_RELOAD || control_req_check(r, msg, sizeof msg) != 0) {
        util_buf_printf(err, "bridgehead: %s\n",
                        r->verb == CONTROL_RELOAD ? "reload is not a queue request" : msg);
        return BH_EINVAL;
    }
    if (r->id[0] != '\0' && !queue_id_valid(r->id)) {
        util_buf_puts(err, "bridgehead: not a queue ID: ");
        put_text(err, r->id, 0);
        util_buf_puts(err, "\n");
        return BH_EINVAL;
    }
    int rc;
    if (r->verb == CONTROL_LIST || r->verb == CONTROL_SHOW)
        rc = run_walk(q, r, out);
    else if (r->verb == CONTROL_STATS)
        rc = run_stats(q, r, now, out);
    else if (r->verb == CONTROL_FLUSH)
        rc = run_flush(q, r, now, out);
    else
        rc = run_by_message(q, r, out);
    return report(q, r, rc, err);
}
