/* Helpers shared by the C benchmark clients (wsb_client.c, lws_client.c):
 * key=value arguments, clocks, memory/CPU readings and the latency JSON line
 * every client prints in the same format (see bench/README.md). */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Set by main: arguments after the scenario name are key=value. */
static int g_argc;
static char **g_argv;

static inline const char *arg_s(const char *k, const char *d) {
    size_t kl = strlen(k);
    for (int i = 2; i < g_argc; i++)
        if (strncmp(g_argv[i], k, kl) == 0 && g_argv[i][kl] == '=') return g_argv[i] + kl + 1;
    return d;
}
static inline double arg_d(const char *k, double d) {
    const char *v = arg_s(k, NULL);
    return v ? atof(v) : d;
}
static inline long arg_l(const char *k, long d) {
    const char *v = arg_s(k, NULL);
    return v ? atol(v) : d;
}

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static inline long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    if (!f) return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) { v = atol(line + 6); break; }
    fclose(f);
    return v;
}

static inline double cpu_us(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1e6 +
           ru.ru_stime.tv_usec;
}

static inline int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static inline double pct(double *v, size_t n, double p) {
    size_t i = (size_t)((n - 1) * p + 0.5);
    return v[i];
}
/* Sorts v and prints the latency line: {"n","median_us","p99_us","min_us"}. */
static inline void print_lat(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_d);
    printf("{\"n\":%zu,\"median_us\":%.2f,\"p99_us\":%.2f,\"min_us\":%.2f}\n", n, pct(v, n, 0.5),
           pct(v, n, 0.99), v[0]);
}

#endif
