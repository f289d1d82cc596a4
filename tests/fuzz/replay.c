/* SPDX-License-Identifier: MIT */
/* Replays a corpus through a libFuzzer target without libFuzzer: every file under the
 * directories (or files) given on the command line, once each, after every prefix of it (every
 * 97th of a file over 4096 bytes) so that truncation paths run too. Run under the sanitizer
 * build this is the suite `fuzz`. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned n_inputs;

/* An exact-size copy, so ASan sees reads past the end. */
static int run_copy(const char *buf, size_t n) {
        uint8_t *copy = malloc(n ? n : 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, buf, n);
        LLVMFuzzerTestOneInput(copy, n);
        free(copy);
        return 0;
}

static int run_file(const char *path) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int r = file_read_all(path, 1u << 20, &buf, &len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        /* the proper prefixes: all of them, or every 97th of a file over 4096 bytes (a TLS
         * flight, a large body), which would take long byte by byte; then the whole file */
        for (size_t i = 0; i < len; i += (len > 4096 ? 97 : 1))
                if ((r = run_copy(buf, i)) < 0)
                        return r;
        if ((r = run_copy(buf, len)) < 0)
                return r;
        n_inputs++;
        return 0;
}

static int run_path(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0) {
                perror(path);
                return -1;
        }
        if (!S_ISDIR(st.st_mode))
                return run_file(path);
        struct dirent **names;
        int n = scandir(path, &names, NULL, alphasort), r = 0;
        if (n < 0) {
                perror(path);
                return -1;
        }
        for (int i = 0; i < n; i++) {
                if (names[i]->d_name[0] != '.') {
                        char p[4096];
                        snprintf(p, sizeof p, "%s/%s", path, names[i]->d_name);
                        if (run_path(p) < 0)
                                r = -1;
                }
                free(names[i]);
        }
        free(names);
        return r;
}

int main(int argc, char **argv) {
        int r = 0;
        for (int i = 1; i < argc; i++)
                if (run_path(argv[i]) < 0)
                        r = 1;
        if (n_inputs == 0) {
                fprintf(stderr, "no corpus inputs found\n");
                return 1;
        }
        printf("replayed %u inputs with their prefixes\n", n_inputs);
        return r;
}
