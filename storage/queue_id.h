/*
 * queue_id: queue IDs, the names of messages in the queue (SPEC §6).
 *
 * An ID is QUEUE_ID_LEN characters of the RFC 4648 base32 alphabet
 * (A-Z, 2-7, uppercase) holding 80 bits: 45 bits of milliseconds since the
 * epoch, then a 19-bit sequence, then 16 random bits. The first 9 characters
 * encode the time, so IDs are ordered by time as numbers (the RFC 4648
 * alphabet does not sort in ASCII order, so not always as strings).
 *
 * queue_id_new() is thread-safe: the time and sequence come from one atomic
 * 64-bit counter that only ever grows, so IDs made by one process are unique
 * (the one process-wide variable of the storage modules, on purpose: a
 * context would not make uniqueness any easier to prove). The random bits
 * (getrandom) and the random start of the sequence in each millisecond keep
 * IDs of different processes apart; the queue's UNIQUE constraint catches
 * the rest.
 */
#ifndef BH_STORAGE_QUEUE_ID_H
#define BH_STORAGE_QUEUE_ID_H

#include <stdbool.h>

#define QUEUE_ID_LEN 16

/* Write a new ID and its terminating NUL into out. */
void queue_id_new(char out[QUEUE_ID_LEN + 1]);

/*
 * True when s is a well-formed ID: exactly QUEUE_ID_LEN characters of the
 * alphabet, any case. Hostile input is fine.
 */
bool queue_id_valid(const char *s);

/*
 * Copy a valid ID into out in upper case. Returns 0, or BH_EINVAL (out is
 * then "") when s is not valid.
 */
int queue_id_normalise(const char *s, char out[QUEUE_ID_LEN + 1]);

#endif
