/*
 * connector: the connector model (SPEC §2) as plain values, and the pure
 * restriction checks on it: sender patterns, priorities, system flag, size.
 *
 * A struct connector lives inside a struct config (config.h) and is owned by
 * it; it is immutable once the config is built, so any thread may read it
 * while it holds a reference to the config.
 */
#ifndef BH_CONNECTORS_CONNECTOR_H
#define BH_CONNECTORS_CONNECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct schedule;

enum connector_route { CONNECTOR_ROUTE_SMARTHOST, CONNECTOR_ROUTE_DNS };
enum connector_balance {
    CONNECTOR_BALANCE_ROUND_ROBIN,
    CONNECTOR_BALANCE_RANDOM,
    CONNECTOR_BALANCE_FAILOVER
};
enum connector_tls_mode {
    CONNECTOR_TLS_NONE,
    CONNECTOR_TLS_OPPORTUNISTIC,
    CONNECTOR_TLS_REQUIRED,
    CONNECTOR_TLS_VERIFY
};
enum connector_priority {
    CONNECTOR_PRIORITY_LOW = 0,
    CONNECTOR_PRIORITY_NORMAL = 1,
    CONNECTOR_PRIORITY_HIGH = 2
};
#define CONNECTOR_PRIORITY_ALL 7u /* bitmask of 1u << enum connector_priority */

/* TLS protocol versions as OpenSSL numbers them, without including it. */
#define CONNECTOR_TLS1_2 0x0303
#define CONNECTOR_TLS1_3 0x0304

struct connector_aspace {
    char *space;   /* normalised: "*", "*.example.com" or "example.com" */
    unsigned cost; /* default 1 */
};

struct connector_bridgehead {
    char *host; /* host name or IP address, as written (IPv6 without []) */
    uint16_t port;
    unsigned weight; /* >= 1 */
};

struct connector_tls {
    enum connector_tls_mode mode;
    char *ca_file; /* absolute path, NULL: the system store */
    char **names;  /* as written ("*.x" kept; tlspolicy turns it into ".x") */
    size_t nnames;
    int min_version; /* CONNECTOR_TLS1_2 or CONNECTOR_TLS1_3 */
};

struct connector_senders {
    bool default_accept;
    char **accept; /* patterns, lowercased: "a@b", "*@b", "*@*.b", "<>" */
    size_t naccept;
    char **reject;
    size_t nreject;
};

struct connector_timeouts {
    uint64_t connect, greeting, command, data_block, data_end; /* seconds */
};

struct connector {
    char *name;
    struct connector_aspace *aspaces;
    size_t naspaces;
    enum connector_route route;
    uint16_t port; /* dns route: port of the MX hosts; default 25 */
    struct connector_bridgehead *bridgeheads;
    size_t nbridgeheads;
    enum connector_balance balance;
    unsigned max_connections;             /* per bridgehead, default 10 */
    unsigned max_messages_per_connection; /* default 100 */
    uint64_t max_message_size;            /* 0: no limit beyond the server's */
    bool ehlo;                            /* default true */
    char *helo_name;                      /* default server.hostname */
    char *auth_username;                  /* NULL: no outbound AUTH */
    char *auth_password_file;             /* absolute path */
    char *auth_password;                  /* first line of the file */
    struct connector_tls tls;
    struct schedule *schedule; /* NULL: always open */
    unsigned priorities;       /* bitmask, default CONNECTOR_PRIORITY_ALL */
    bool system_messages;      /* default true */
    bool non_system_messages;  /* default true */
    struct connector_senders senders;
    bool triggered;
    struct connector_timeouts timeouts;
    uint64_t health_retry_initial; /* seconds, default 30 */
    uint64_t health_retry_max;     /* seconds, default 600 */
    char **source_nodes;           /* NULL/0: all nodes */
    size_t nsource_nodes;
    int line, col; /* position of the connector's mapping in the file */
};

/*
 * Sender restriction (SPEC §3): the most specific matching pattern decides
 * (exact address, then "*@domain", then "*@*.domain" with the longest
 * domain first); on a tie reject wins; no match means the default. Case is
 * ignored in the local part and the domain. sender "" is the null sender and
 * matches only "<>". Returns true when the sender may use the connector.
 */
bool connector_sender_allowed(const struct connector_senders *s, const char *sender);

/* Is a sender pattern well-formed? Returns 0 or BH_EINVAL. */
int connector_sender_pattern_check(const char *pattern);

/*
 * Priority from one header (SPEC §3): name is the header field name (any
 * case), value its unfolded value. Returns the priority the header states
 * and its rank (3: Importance, 2: X-Priority, 1: Priority), or rank 0 when
 * the header says nothing usable. The caller keeps the highest rank seen.
 */
int connector_priority_from_header(const char *name, const char *value,
                                   enum connector_priority *prio);
const char *connector_priority_name(enum connector_priority p);
int connector_priority_parse(const char *s, enum connector_priority *p);

/*
 * May a connection opened under connector a carry mail for connector b (the
 * same connector after a reload)? True when everything that shaped the
 * session is the same: name, route and port, bridgeheads, EHLO/HELO name,
 * AUTH credentials, TLS policy and timeouts. A `verify` connector counts as
 * changed whenever a != b: its trust anchors are re-read at every reload.
 */
bool connector_same_transport(const struct connector *a, const struct connector *b);

const char *connector_route_name(enum connector_route r);
const char *connector_balance_name(enum connector_balance b);
const char *connector_tls_mode_name(enum connector_tls_mode m);

#endif
