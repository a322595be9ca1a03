/*
 * ready_set.c — which sockets have events waiting (see ready_set.h).
 *
 * Two circular doubly linked lists through the nodes, each with a head in
 * the set: the marked nodes and the running pass. A node is in at most one
 * of them, and `where` says which. Every function that reads or changes a
 * list or a node's links takes the set's lock.
 */

#include <stddef.h>

#include "ready_set.h"

enum { READY_NOWHERE, READY_MARKED, READY_IN_PASS };

#ifdef _WIN32
static void mutex_init(ready_mutex *m) { InitializeCriticalSection(m); }
static void mutex_destroy(ready_mutex *m) { DeleteCriticalSection(m); }
static void mutex_lock(ready_mutex *m) { EnterCriticalSection(m); }
static void mutex_unlock(ready_mutex *m) { LeaveCriticalSection(m); }
#else
static void mutex_init(ready_mutex *m) { pthread_mutex_init(m, NULL); }
static void mutex_destroy(ready_mutex *m) { pthread_mutex_destroy(m); }
static void mutex_lock(ready_mutex *m) { pthread_mutex_lock(m); }
static void mutex_unlock(ready_mutex *m) { pthread_mutex_unlock(m); }
#endif

/* The list helpers: the caller holds the lock. */

static void list_init(ready_node *head)
{
    head->prev = head->next = head;
}

static void list_append(ready_node *head, ready_node *node)
{
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

static void list_unlink(ready_node *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = NULL;
    node->where = READY_NOWHERE;
}

void ready_set_init(ready_set *set, void (*wake)(void *ud), void *wake_ud)
{
    set->wake = wake;
    set->wake_ud = wake_ud;
    mutex_init(&set->lock);
    list_init(&set->marked);
    list_init(&set->pass);
}

void ready_set_destroy(ready_set *set)
{
    mutex_destroy(&set->lock);
}

void ready_add(ready_set *set, ready_node *node, void *owner)
{
    node->set = set;
    node->owner = owner;
    mutex_lock(&set->lock);
    list_append(&set->marked, node);
    node->where = READY_MARKED;
    mutex_unlock(&set->lock);
}

void ready_remove(ready_node *node)
{
    ready_set *set = node->set;
    mutex_lock(&set->lock);
    if (node->where != READY_NOWHERE)
        list_unlink(node);
    mutex_unlock(&set->lock);
}

int ready_mark(ready_node *node)
{
    ready_set *set = node->set;
    int marked = 0;
    mutex_lock(&set->lock);
    if (node->where == READY_NOWHERE) {
        list_append(&set->marked, node);
        node->where = READY_MARKED;
        marked = 1;
    }
    mutex_unlock(&set->lock);
    if (marked && set->wake)
        set->wake(set->wake_ud);
    return marked;
}

void ready_take(ready_set *set)
{
    mutex_lock(&set->lock);
    for (ready_node *node = set->marked.next; node != &set->marked; node = node->next)
        node->where = READY_IN_PASS;
    if (set->marked.next != &set->marked) {
        /* Splice the marked list onto the end of the pass (empty, unless a
           pass was cut short). */
        ready_node *first = set->marked.next, *last = set->marked.prev;
        first->prev = set->pass.prev;
        set->pass.prev->next = first;
        last->next = &set->pass;
        set->pass.prev = last;
        list_init(&set->marked);
    }
    mutex_unlock(&set->lock);
}

void *ready_next(ready_set *set)
{
    void *owner = NULL;
    mutex_lock(&set->lock);
    if (set->pass.next != &set->pass) {
        ready_node *node = set->pass.next;
        owner = node->owner;
        list_unlink(node);
    }
    mutex_unlock(&set->lock);
    return owner;
}
