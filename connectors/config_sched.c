#include "connectors/config_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/schedule.h"
#include "connectors/util.h"

static const char *const sched_keys[] = {"timezone", "windows", "oversized", NULL};
static const char *const window_keys[] = {"days", "from", "to", NULL};
static const char *const oversized_keys[] = {"threshold", "windows", NULL};

/* [A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*: no "..", no leading "/", so the name
 * cannot leave the zoneinfo folder. */
static bool
tz_name_ok(const char *s)
{
    static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+-";
    if (strlen(s) > 255)
        return false;
    for (;;) {
        size_t n = strspn(s, set);
        if (n == 0)
            return false;
        s += n;
        if (*s == '\0')
            return true;
        if (*s++ != '/')
            return false;
    }
}

/* One day-list string at n, OR-ed into *days. */
static int
day_list(struct config_val *v, const struct ytree_node *n, unsigned *days)
{
    unsigned d;
    char q[80];
    const char *s = config_val_string(v, n, "days");
    if (s == NULL)
        return BH_EINVAL;
    if (schedule_parse_days(s, &d) < 0) {
        config_val_err(v, n, "days: %s is not a day list (mon, mon-fri, fri-mon, \"sat,sun\")",
                       ytree_quote(s, q, sizeof q));
        return BH_EINVAL;
    }
    *days |= d;
    return 0;
}

/* days: a day-list string or a non-empty list of them. */
static int
parse_days(struct config_val *v, const struct ytree_node *n, unsigned *days)
{
    *days = 0;
    if (n->kind != YTREE_SEQUENCE)
        return day_list(v, n, days);
    if (n->nitems == 0) {
        config_val_err(v, n, "days: must not be empty");
        return BH_EINVAL;
    }
    int rc = 0;
    for (size_t i = 0; i < n->nitems; i++)
        if (day_list(v, n->items[i], days) < 0)
            rc = BH_EINVAL;
    return rc;
}

static int
parse_time(struct config_val *v, const struct ytree_node *w, const char *key, int *minutes)
{
    const struct ytree_node *n = ytree_get(w, key);
    bool to = strcmp(key, "to") == 0;
    char q[80];
    const char *s = config_val_string(v, n, key);
    if (s == NULL)
        return BH_EINVAL;
    if (schedule_parse_time(s, to, minutes) == 0)
        return 0;
    if (to)
        config_val_err(v, n, "to: %s is not a time (HH:MM, 00:00 to 24:00)",
                       ytree_quote(s, q, sizeof q));
    else
        config_val_err(v, n, "from: %s is not a time (HH:MM, 00:00 to 23:59; only to may be 24:00)",
                       ytree_quote(s, q, sizeof q));
    return BH_EINVAL;
}

/* One window mapping {days, from, to}; 0 or BH_EINVAL (reported). */
static int
parse_window(struct config_val *v, const struct ytree_node *w, struct schedule_window *out)
{
    size_t before = v->errors;
    if (!config_val_map(v, w, "windows", window_keys))
        return BH_EINVAL;
    for (size_t i = 0; window_keys[i] != NULL; i++)
        if (ytree_get(w, window_keys[i]) == NULL)
            config_val_missing(v, w, window_keys[i], NULL);
    if (v->errors != before)
        return BH_EINVAL;
    int rc = parse_days(v, ytree_get(w, "days"), &out->days);
    if (parse_time(v, w, "from", &out->from) < 0 || parse_time(v, w, "to", &out->to) < 0)
        return BH_EINVAL;
    if (out->from == out->to) {
        config_val_err(v, config_val_later(config_val_key(w, "from"), config_val_key(w, "to")),
                       "from and to are the same time: the window would be empty");
        return BH_EINVAL;
    }
    /* "00:00" as an end is midnight at the end of the day (to is 1..1440). */
    if (out->to == 0)
        out->to = 1440;
    return rc;
}

/* The windows list under key of map (required, non-empty). Returns the
 * windows (NULL when bad) and their number in *n. */
static struct schedule_window *
parse_windows(struct config_val *v, const struct ytree_node *map, size_t *n)
{
    const struct ytree_node *seq = ytree_get(map, "windows");
    *n = 0;
    if (seq == NULL) {
        config_val_missing(v, map, "windows", NULL);
        return NULL;
    }
    if (!config_val_seq(v, seq, "windows"))
        return NULL;
    if (seq->nitems == 0) {
        config_val_err(v, seq, "windows: must not be empty");
        return NULL;
    }
    struct schedule_window *w = xcalloc(seq->nitems, sizeof *w);
    int rc = 0;
    for (size_t i = 0; i < seq->nitems; i++)
        if (parse_window(v, seq->items[i], &w[i]) < 0)
            rc = BH_EINVAL;
    if (rc < 0) {
        free(w);
        return NULL;
    }
    *n = seq->nitems;
    return w;
}

/* oversized: {threshold, windows}, both required. */
static struct schedule_window *
parse_oversized(struct config_val *v, const struct ytree_node *o, size_t *n, uint64_t *threshold)
{
    *n = 0;
    if (!config_val_map(v, o, "oversized", oversized_keys))
        return NULL;
    if (ytree_get(o, "threshold") == NULL)
        config_val_missing(v, o, "threshold", "oversized windows need a threshold");
    else
        config_val_size(v, o, "threshold", 1, threshold);
    return parse_windows(v, o, n);
}

/* The timezone name, checked; "UTC" when absent; NULL when bad. */
static const char *
parse_tz(struct config_val *v, const struct ytree_node *s)
{
    const struct ytree_node *n = ytree_get(s, "timezone");
    char q[80];
    if (n == NULL)
        return "UTC";
    const char *tz = config_val_string(v, n, "timezone");
    if (tz != NULL && !tz_name_ok(tz)) {
        config_val_err(v, n, "timezone: %s is not a timezone name (like Europe/Paris)",
                       ytree_quote(tz, q, sizeof q));
        return NULL;
    }
    return tz;
}

void
config_sched_parse(struct config_val *v, const struct ytree_node *m, struct connector *k)
{
    const struct ytree_node *s = ytree_get(m, "schedule"), *o;
    struct schedule_window *w, *ow = NULL;
    size_t nw, now = 0, before = v->errors;
    uint64_t threshold = 0;
    char err[256] = "", q[80];
    if (s == NULL || !config_val_map(v, s, "schedule", sched_keys))
        return;
    const char *tz = parse_tz(v, s);
    w = parse_windows(v, s, &nw);
    if ((o = ytree_get(s, "oversized")) != NULL)
        ow = parse_oversized(v, o, &now, &threshold);
    struct schedule *sch = NULL;
    if (tz != NULL) {
        sch = schedule_new(tz, w, nw, ow, now, threshold, err, sizeof err);
        if (sch == NULL) {
            const struct ytree_node *at = ytree_get(s, "timezone");
            config_val_err(v, at != NULL ? at : s, "timezone: unknown timezone %s: %s",
                           ytree_quote(tz, q, sizeof q), err);
        }
    }
    if (v->errors != before)
        schedule_free(sch);
    else
        k->schedule = sch;
    free(w);
    free(ow);
}
