/*
 * ready_set.h — which sockets have events waiting (ready_set.c).
 *
 * The one part of the Luau binding that another thread touches. wsbridge
 * calls a socket's notify callback on that socket's I/O thread whenever it
 * queues an event; the callback marks the socket's node here, and the
 * scheduler thread takes the marked nodes and polls just those sockets. A
 * pump then costs in proportion to the sockets that have events, not to all
 * sockets.
 *
 * Each socket has one ready_node, which the owner keeps inside its own
 * record and passes to wsb_set_notify as the callback's `user_data`. The
 * node lives as long as the socket: the owner removes it only after
 * wsb_free(socket) returned, and wsb_free waits for a callback in progress
 * and none starts after it returns. So a node is never marked after its
 * removal, and nothing is looked up by handle.
 *
 *   owner (scheduler) thread            I/O threads
 *   ────────────────────────            ───────────
 *   ready_add     node joins, marked    ready_mark   queue it once, and
 *   ready_take    start a pass: every                call the wake hook
 *                 marked node moves to               if that is news
 *                 the pass, unmarked
 *   ready_next    the next node of the pass (its owner pointer), or NULL
 *   ready_remove  node leaves (after wsb_free), from the marked list or
 *                 from the pass
 *
 * Nothing is lost: a node marked while a pass runs either is still in the
 * pass (it will be polled: its event was queued before the callback ran) or
 * has already left it and goes to the marked list for the next pass. Nodes
 * leave a pass when they are removed, so a pass may run code that frees
 * sockets. Nothing here allocates.
 *
 * Plain C99 and a mutex: pthreads, or a Windows critical section.
 */
#ifndef READY_SET_H
#define READY_SET_H

#ifdef _WIN32
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>
typedef CRITICAL_SECTION ready_mutex;
#else
#include <pthread.h>
typedef pthread_mutex_t ready_mutex;
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ready_set ready_set;

/* One socket's place in the set. Its fields belong to ready_set.c. */
typedef struct ready_node {
    /* Set by ready_add before any other thread can see the node, and never
       changed after: read without the lock. */
    ready_set *set;
    void *owner;
    /* Guarded by set->lock. */
    struct ready_node *prev, *next; /* in the marked list or the pass */
    int where;                      /* READY_NOWHERE, _MARKED or _IN_PASS */
} ready_node;

struct ready_set {
    /* Set by ready_set_init and never changed after: read without the lock. */
    void (*wake)(void *ud);
    void *wake_ud;
    /* Guards every node's prev, next and where, and the two lists. */
    ready_mutex lock;
    ready_node marked; /* head of the marked nodes, in the order they were marked */
    ready_node pass;   /* head of the nodes the running pass has yet to visit */
};

/* Makes `set` empty. `wake` (may be NULL) is called with `wake_ud` by
   ready_mark, outside the lock, when it marks a node that was not marked. */
void ready_set_init(ready_set *set, void (*wake)(void *ud), void *wake_ud);

/* Releases the lock. Remove the nodes first (or stop using them). */
void ready_set_destroy(ready_set *set);

/* Owner thread: `node` joins `set` for `owner` (what ready_next returns for
   it), already marked (but without a wake): the socket's first events may
   have come before its callback was set, so the next pass polls it anyway. */
void ready_add(ready_set *set, ready_node *node, void *owner);

/* Owner thread: `node` leaves its set, wherever it is. Call it only when no
   ready_mark of this node can run any more (after wsb_free). Idempotent. */
void ready_remove(ready_node *node);

/* Any thread: marks `node` unless it is marked or in the running pass, and
   then calls the set's wake hook. Returns 1 if it marked it. */
int ready_mark(ready_node *node);

/* Owner thread: starts a pass: the marked nodes join the pass (in the order
   they were marked) and are unmarked, so a new ready_mark marks them again. */
void ready_take(ready_set *set);

/* Owner thread: takes the next node off the pass and returns its owner, or
   NULL when the pass is over. */
void *ready_next(ready_set *set);

#ifdef __cplusplus
}
#endif

#endif
