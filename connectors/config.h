/*
 * config: loads and validates the YAML configuration (SPEC §2, §9) into one
 * immutable, reference-counted struct config.
 *
 * config_load() reports every problem it finds as FILE:LINE:COL: message in
 * a struct config_diags and returns NULL; the caller prints them. A loaded
 * config is never modified; a reload builds a new one and swaps the pointer.
 * config_ref/config_unref are atomic, so any thread may hold a reference.
 */
#ifndef BH_CONNECTORS_CONFIG_H
#define BH_CONNECTORS_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "connectors/connector.h"

#define CONFIG_MAX_FILE (16u * 1024 * 1024)

enum config_listen_tls { CONFIG_LISTEN_NONE, CONFIG_LISTEN_STARTTLS, CONFIG_LISTEN_IMPLICIT };
enum config_backend { CONFIG_BACKEND_SQLITE, CONFIG_BACKEND_POSTGRES };

struct config_listen {
    char *address; /* as written: "0.0.0.0:25", "[::]:25" */
    struct sockaddr_storage addr;
    enum config_listen_tls tls;
    bool odmr;
};

struct config_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
};

struct config_user {
    char *name;
    char *hash;     /* crypt(3) string, "$y$..." or "$6$..." */
    char **domains; /* normalised; the domains the user may pull with ATRN */
    size_t ndomains;
};

struct config_diag {
    char *file;
    int line, col; /* from 1; 0 when the problem has no position */
    char *msg;
};

struct config_diags {
    struct config_diag *v;
    size_t n, cap;
};

struct config {
    char *path; /* the config file as given */
    char *dir;  /* its folder, absolute: relative paths resolve against it */

    /* server: */
    char *hostname;
    char *node;
    struct config_listen *listens;
    size_t nlistens;
    bool has_tls;
    char *tls_certificate; /* absolute */
    char *tls_key;         /* absolute */
    int tls_min_version;   /* CONNECTOR_TLS1_2 / _3 */
    char **accepted_domains; /* normalised patterns: "x" or "*.x" */
    size_t naccepted_domains;
    struct config_cidr *relay_networks;
    size_t nrelay_networks;
    char *users_file; /* absolute; NULL when unset */
    struct config_user *users;
    size_t nusers;
    uint64_t max_message_size;
    unsigned max_recipients;
    unsigned max_connections;
    unsigned max_connections_per_ip;
    uint64_t timeout_command; /* seconds */
    uint64_t timeout_data;
    uint64_t greet_delay;
    char *postmaster; /* NULL when unset */

    /* storage: */
    enum config_backend backend;
    char *storage_path; /* absolute */
    char *storage_dsn;

    /* queue: (seconds) */
    uint64_t retry_initial, retry_max, lifetime, delay_warning;

    /* dns: "host:port" strings as written; NULL/0: /etc/resolv.conf */
    char **dns_servers;
    size_t ndns_servers;

    char *metrics_listen; /* NULL: off */

    struct connector *connectors; /* in file order */
    size_t nconnectors;

    /* Private: the reference count, only through config_ref/config_unref. */
    atomic_uint refs;
};

/* Load and validate path. Returns a config with one reference, or NULL with
 * every problem appended to *diags (which the caller initialised to zero). */
struct config *config_load(const char *path, struct config_diags *diags);
struct config *config_ref(struct config *c);
void config_unref(struct config *c); /* NULL is a no-op */

const struct connector *config_connector(const struct config *c, const char *name);

/* A reload (SPEC §9): the settings that only a restart changes — listen
 * addresses, server.node, storage, dns.servers, metrics.listen — keep the
 * running config old's values in c, which the caller still owns alone;
 * note(setting) is called for each that differed. */
void config_keep_restart_settings(struct config *c, const struct config *old,
                                  void (*note)(const char *setting, void *arg), void *arg);

/* Does a client address fall in relay_networks? sa is AF_INET or AF_INET6;
 * an IPv4-mapped IPv6 address counts as its IPv4 address. */
bool config_relay_allowed(const struct config *c, const struct sockaddr *sa);
/* Is a normalised domain in accepted_domains? */
bool config_domain_accepted(const struct config *c, const char *domain);

/* Parse "a.b.c.d/n" or "x::y/n"; host bits set is an error. 0 or BH_EINVAL. */
int config_cidr_parse(const char *s, struct config_cidr *out, const char **why);
bool config_cidr_match(const struct config_cidr *cidr, const struct sockaddr *sa);

void config_diag_add(struct config_diags *d, const char *file, int line, int col,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void config_diags_fini(struct config_diags *d);

#endif
