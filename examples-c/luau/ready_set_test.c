/*
 * ready_set_test.c — the ready set (ready_set.c) on its own: its rules one by
 * one, then marker threads against the owner thread. .ci/run builds it and
 * runs it under valgrind and under ThreadSanitizer (gcc -fsanitize=thread):
 *
 *   cc -std=c99 -g -pthread -Iexamples-c/luau examples-c/luau/ready_set_test.c \
 *       examples-c/luau/ready_set.c -o ready_set_test && ./ready_set_test
 *
 * Ends with "N passed, N failed"; exits non-zero on a failure.
 */

#include <pthread.h>
#include <stdio.h>

#include "ready_set.h"

static int passed, failed;

#define CHECK(cond)                                                                                      \
    do {                                                                                                 \
        if (cond) {                                                                                      \
            passed++;                                                                                    \
        } else {                                                                                         \
            failed++;                                                                                    \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                       \
        }                                                                                                \
    } while (0)

/* What the threads share, under one lock: the wake hook's calls, and the
   owner's word to the marker threads to stop. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long wakes, stop;

static long get(const long *v)
{
    long n;
    pthread_mutex_lock(&lock);
    n = *v;
    pthread_mutex_unlock(&lock);
    return n;
}

static void add(long *v, long n)
{
    pthread_mutex_lock(&lock);
    *v += n;
    pthread_mutex_unlock(&lock);
}

static void count_wake(void *ud)
{
    (void)ud;
    add(&wakes, 1);
}

/* The wakes since the last call. */
static long wake_count(void)
{
    static long seen;
    long n = get(&wakes) - seen;
    seen += n;
    return n;
}

/* Owners are the addresses of these. */
static int a, b, c;

static void test_add_mark_take(void)
{
    ready_set set;
    ready_node na, nb, nc;
    ready_set_init(&set, count_wake, NULL);
    ready_add(&set, &na, &a);
    ready_add(&set, &nb, &b);
    CHECK(wake_count() == 0); /* ready_add marks without waking */
    CHECK(ready_mark(&na) == 0); /* already marked: once until taken */
    CHECK(ready_next(&set) == NULL); /* no pass yet */
    ready_take(&set);
    ready_add(&set, &nc, &c); /* marked: for the next pass, not this one */
    CHECK(ready_next(&set) == &a);
    CHECK(ready_next(&set) == &b);
    CHECK(ready_next(&set) == NULL);
    CHECK(ready_mark(&nb) == 1); /* unmarked by the take: news again */
    CHECK(ready_mark(&na) == 1);
    CHECK(ready_mark(&na) == 0);
    CHECK(wake_count() == 2);
    ready_take(&set);
    /* In the order marked. */
    CHECK(ready_next(&set) == &c);
    CHECK(ready_next(&set) == &b);
    CHECK(ready_next(&set) == &a);
    CHECK(ready_next(&set) == NULL);
    ready_take(&set); /* nothing marked: an empty pass */
    CHECK(ready_next(&set) == NULL);
    ready_remove(&na);
    ready_remove(&nb);
    ready_remove(&nc);
    ready_set_destroy(&set);
}

static void test_mark_during_pass(void)
{
    ready_set set;
    ready_node na, nb;
    ready_set_init(&set, count_wake, NULL);
    ready_add(&set, &na, &a);
    ready_add(&set, &nb, &b);
    ready_take(&set);
    CHECK(ready_next(&set) == &a);
    CHECK(ready_mark(&na) == 1); /* left the pass: marked for the next one */
    CHECK(ready_mark(&nb) == 0); /* still in the pass: it will be visited */
    CHECK(wake_count() == 1);
    CHECK(ready_next(&set) == &b);
    CHECK(ready_next(&set) == NULL);
    ready_take(&set);
    CHECK(ready_next(&set) == &a);
    CHECK(ready_next(&set) == NULL);
    ready_remove(&na);
    ready_remove(&nb);
    ready_set_destroy(&set);
}

static void test_remove(void)
{
    ready_set set;
    ready_node na, nb, nc;
    ready_set_init(&set, count_wake, NULL);
    ready_add(&set, &na, &a);
    ready_add(&set, &nb, &b);
    ready_add(&set, &nc, &c);
    ready_remove(&nb); /* from the marked list */
    ready_remove(&nb); /* idempotent */
    ready_take(&set);
    CHECK(ready_next(&set) == &a);
    ready_remove(&nc); /* from the pass, as a handler freeing another socket */
    ready_remove(&na); /* not in any list (being visited) */
    CHECK(ready_next(&set) == NULL);
    ready_take(&set);
    CHECK(ready_next(&set) == NULL);
    /* A removed node can join again (the set does not remember it). */
    ready_add(&set, &nb, &b);
    ready_take(&set);
    CHECK(ready_next(&set) == &b);
    CHECK(ready_next(&set) == NULL);
    ready_remove(&nb);
    CHECK(wake_count() == 0);
    ready_set_destroy(&set);
}

/* ------------------------------------------------------------------------ */
/* Threads: MARKERS threads mark the SHARED nodes (as I/O threads do) while  */
/* the owner takes passes and adds, marks and removes nodes of its own.      */

/* The owner runs passes until the markers' marks have woken it MARKER_WAKES
   times (and at least PASSES passes; at most MAX_PASSES). */
enum { SHARED = 16, OWN = 8, MARKERS = 3, PASSES = 2000, MARKER_WAKES = 1000, MAX_PASSES = 10000000 };

typedef struct marker {
    pthread_t thread;
    ready_node *nodes;
    unsigned seed;
    long marked[SHARED]; /* ready_mark returned 1, per node */
} marker;

/* Marks shared nodes at random until the owner says stop. */
static void *mark_loop(void *arg)
{
    marker *m = (marker *)arg;
    do {
        for (int i = 0; i < 64; i++) {
            int k;
            m->seed = m->seed * 1103515245u + 12345u;
            k = (int)((m->seed >> 16) % SHARED);
            m->marked[k] += ready_mark(&m->nodes[k]);
        }
    } while (!get(&stop));
    return NULL;
}

/* The owner's side: joins, marks and removes its own nodes at random. */
static void own_step(ready_set *set, ready_node *own, int *own_in, int *owners, unsigned *seed, long *own_marked)
{
    int j;
    *seed = *seed * 1103515245u + 12345u;
    j = (int)((*seed >> 8) % OWN);
    switch ((*seed >> 16) % 4) {
    case 0:
        if (!own_in[j]) {
            ready_add(set, &own[j], &owners[SHARED + j]);
            own_in[j] = 1;
        }
        break;
    case 1:
        if (own_in[j]) {
            ready_remove(&own[j]);
            own_in[j] = 0;
        }
        break;
    default:
        if (own_in[j])
            *own_marked += ready_mark(&own[j]);
        break;
    }
}

static void test_threads(void)
{
    static int owners[SHARED + OWN];
    ready_set set;
    ready_node shared[SHARED], own[OWN];
    int own_in[OWN] = {0};
    long visits[SHARED + OWN + 1] = {0}, own_marked = 0, marked_total = 0, bad = 0, wakes0;
    marker markers[MARKERS];
    unsigned seed = 7;
    int passes = 0, started = 0;
    const int *owner;

    ready_set_init(&set, count_wake, NULL);
    wake_count();
    wakes0 = get(&wakes);
    for (int i = 0; i < SHARED; i++)
        ready_add(&set, &shared[i], &owners[i]);
    for (int t = 0; t < MARKERS; t++) {
        markers[t].nodes = shared;
        markers[t].seed = 1234u + 77u * (unsigned)t;
        for (int i = 0; i < SHARED; i++)
            markers[t].marked[i] = 0;
        if (pthread_create(&markers[t].thread, NULL, mark_loop, &markers[t]) != 0)
            break;
        started++;
    }
    CHECK(started == MARKERS);

    /* The owner: passes while the markers run, its own nodes joining, marked
       and leaving between passes and during them (as a handler frees a
       socket that is still in the pass). */
    do {
        for (int k = 0; k < OWN; k++)
            own_step(&set, own, own_in, owners, &seed, &own_marked);
        ready_take(&set);
        while ((owner = (const int *)ready_next(&set)) != NULL) {
            if (owner >= owners && owner < owners + SHARED + OWN)
                visits[owner - owners]++;
            else
                visits[SHARED + OWN]++; /* not an owner of ours */
            own_step(&set, own, own_in, owners, &seed, &own_marked);
        }
        passes++;
    } while (started == MARKERS && passes < MAX_PASSES &&
             (passes < PASSES || get(&wakes) - wakes0 - own_marked < MARKER_WAKES));
    add(&stop, 1);
    for (int t = 0; t < started; t++)
        pthread_join(markers[t].thread, NULL);
    for (int j = 0; j < OWN; j++)
        if (own_in[j])
            ready_remove(&own[j]);
    ready_take(&set);
    while ((owner = (const int *)ready_next(&set)) != NULL)
        if (owner >= owners && owner < owners + SHARED)
            visits[owner - owners]++;

    /* Every time a shared node was marked (ready_add included), one visit. */
    for (int i = 0; i < SHARED; i++) {
        long marked = 1;
        for (int t = 0; t < started; t++)
            marked += markers[t].marked[i];
        marked_total += marked - 1;
        if (visits[i] != marked) {
            printf("shared node %d: marked %ld times, visited %ld times\n", i, marked, visits[i]);
            bad++;
        }
    }
    CHECK(bad == 0);
    CHECK(visits[SHARED + OWN] == 0);
    /* A wake for every mark that was news, and none for ready_add. */
    CHECK(wake_count() == marked_total + own_marked);
    printf("threads: %d passes; marks that woke: %ld by %d marker threads, %ld by the owner\n", passes,
           marked_total, started, own_marked);
    for (int i = 0; i < SHARED; i++)
        ready_remove(&shared[i]);
    ready_set_destroy(&set);
}

int main(void)
{
    test_add_mark_take();
    test_mark_during_pass();
    test_remove();
    test_threads();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
